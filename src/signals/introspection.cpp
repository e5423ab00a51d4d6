// process_info (answered by the process itself, like Erlang's) and processes().
#include <erl/process_info.hpp>
#include <erl/receive.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl {

using namespace detail;

namespace {
struct info_reply {
    ref id;
    std::optional<process_info_t> info;
};

process_info_t snapshot(process_control& p, bool asked_by_self) {
    process_info_t i;
    i.self = p.self_pid();
    i.status = asked_by_self       ? process_status::running
               : p.exiting         ? process_status::exiting
               : p.in_receive_wait ? process_status::waiting
                                   : process_status::runnable;
    i.message_queue_len = p.messages.size();
    if (p.signals) {
        i.links.assign(p.signals->links.begin(), p.signals->links.end());
        p.signals->monitoring.for_each(
            [&](const ref&, const pid& target) { i.monitors.push_back(target); });
        p.signals->monitored_by.for_each(
            [&](const ref&, const pid& watcher) { i.monitored_by.push_back(watcher); });
        for (const call_monitor& c : p.signals->calls_out)
            i.monitors.push_back(c.other);
        for (const call_monitor& c : p.signals->calls_in)
            i.monitored_by.push_back(c.other);
    }
    {
        std::lock_guard lock(p.rt->names_mutex);
        if (p.has_name) i.registered_name = p.registered_name;
    }
    i.reductions = p.reductions_total;
    i.trap_exit = p.trap_exit;
    i.stack_size = p.stack.size;
    i.stack_high_water = std::size_t(p.stack.high() - p.deepest);
    return i;
}
} // namespace

namespace detail {

void answer_info_request(process_control& p, envelope& e) {
    auto& req = static_cast<info_request&>(e);
    send_signal(*p.rt, req.from, make_message<info_reply>(info_reply{req.id, snapshot(p, false)}));
}

void answer_info_request_dead(envelope& e) {
    auto& req = static_cast<info_request&>(e);
    with_runtime(req.from.creation(), [&](runtime_impl& rt) {
        send_signal(rt, req.from, make_message<info_reply>(info_reply{req.id, std::nullopt}));
    });
}

} // namespace detail

std::optional<process_info_t> process_info(const pid& target) {
    auto& p = require_process("process_info");
    handle_signals(p);
    if (target == p.self_pid()) return snapshot(p, true);
    ref id = make_ref();
    auto mark = mark_mailbox();
    if (!send_signal(*p.rt, target, envelope_ptr(new info_request(p.self_pid(), id))))
        return std::nullopt;
    return receive(mark, guard([&](const info_reply& r) { return r.id == id; },
                               [](info_reply r) { return std::move(r.info); }));
}

std::vector<pid> processes() {
    auto& me = require_process("processes");
    runtime_impl& rt = *me.rt;
    std::vector<pid> out;
    std::size_t n = rt.table.capacity();
    for (std::uint32_t i = 0; i < n; ++i) {
        process_control* p = rt.table.at(i);
        if (!p || !p->try_ref()) continue;
        if (p->inbox.load(std::memory_order_acquire) != inbox_state::closed)
            out.push_back(p->self_pid());
        p->unref();
    }
    return out;
}

} // namespace erl
