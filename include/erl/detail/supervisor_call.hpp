// A private request/reply for the supervisor's runtime API (to be replaced by the shared gen
// call): monitor the server, send {from, ref, request}, wait for the reply carrying the ref or
// for the server's DOWN, whichever comes first.
#pragma once

#include <optional>
#include <utility>

#include <erl/exit_reason.hpp>
#include <erl/message.hpp>
#include <erl/monitor.hpp>
#include <erl/pid.hpp>
#include <erl/process.hpp>
#include <erl/receive.hpp>
#include <erl/ref.hpp>

namespace erl::detail {

template <typename Request>
struct sup_call_request {
    pid from;
    ref id;
    Request request;
};

template <typename Reply>
struct sup_call_reply {
    ref id;
    Reply reply;
};

// The reply, or the reason the server is gone (noproc when it was not alive).
template <typename Reply>
struct sup_call_result {
    std::optional<Reply> reply;
    exit_reason down;
};

template <typename Reply, typename Request>
sup_call_result<Reply> sup_call(const pid& server, Request request) {
    auto mark = mark_mailbox();
    ref mon = monitor(server);
    ref id = make_ref();
    send(server, sup_call_request<Request>{self(), id, std::move(request)});
    sup_call_result<Reply> out;
    receive(mark,
            guard([&](const sup_call_reply<Reply>& r) { return r.id == id; },
                  [&](sup_call_reply<Reply>&& r) { out.reply.emplace(std::move(r.reply)); }),
            guard([&](const down_msg& d) { return d.id == mon; },
                  [&](down_msg&& d) { out.down = std::move(d.reason); }));
    if (out.reply) demonitor(mon, demonitor_option::flush);
    return out;
}

template <typename Reply>
void sup_reply(const pid& to, const ref& id, Reply reply) {
    send(to, sup_call_reply<Reply>{id, std::move(reply)});
}

} // namespace erl::detail
