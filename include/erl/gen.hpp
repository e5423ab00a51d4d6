// The generic request/reply protocol of OTP's gen module, which gen_server (and later gen_statem)
// build on: a call monitors the server, uses the monitor's ref as the unique tag, sends the
// request with a `from` handle, and waits for the reply, the server's DOWN, or the timeout.
//
// To a server of this program the monitor request and the request are one signal
// (detail::call_signal), and the whole request is one allocation (detail::call_block). A server
// that replies from its own process removes the caller's monitor itself, before it sends, and
// says so in the reply: the caller then forgets the monitor locally, with no demonitor signal
// and no flush (no DOWN can follow such a reply). Any other replier sends a plain reply, and the
// caller demonitors (with flush) as gen:call does.
//
// Late replies never reach the caller's mailbox: every call from C++ has a reply slot shared
// by the caller and whoever replies. The replier claims the slot (waiting -> replied) before it
// sends; a caller that times out abandons it (waiting -> abandoned) and a reply that comes later
// is dropped by the replier. If the replier won the race, its reply is already in the caller's
// signal queue (the claim and the send are one step of plain code: nothing can end the replier
// in between) and the caller takes it: the call then succeeds.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include <erl/atom.hpp>
#include <erl/detail/call_signal.hpp>
#include <erl/detail/call_slot.hpp>
#include <erl/exit_reason.hpp>
#include <erl/message.hpp>
#include <erl/monitor.hpp>
#include <erl/pid.hpp>
#include <erl/process.hpp>
#include <erl/receive.hpp>
#include <erl/ref.hpp>
#include <erl/registry.hpp>
#include <erl/remote_name.hpp>
#include <erl/term.hpp>
#include <erl/term_convert.hpp>

namespace erl {

// The one error style of erlcpp's behaviours: a failed call, start or stop throws a gen_error
// carrying the reason as an exit_reason, which is what OTP's gen:call exits with:
//   timeout                       the server did not answer in time
//   noproc                        the server was dead, or the name was not registered
//   the server's exit reason      the server ended during the call
//   {bad_call, "..."}             the server cannot handle this request (a runtime mismatch)
//   {already_started, "<pid>"}    (start) the name is taken; existing() gives the pid
class gen_error : public std::runtime_error {
  public:
    gen_error(std::string_view operation, exit_reason reason)
        : std::runtime_error(fmt::format("erl::{}: {}", operation, reason)),
          reason_(std::move(reason)) {}
    const exit_reason& reason() const noexcept { return reason_; }

  private:
    exit_reason reason_;
};
// call, send_request/receive_response, sys requests, stop.
class call_error : public gen_error {
  public:
    using gen_error::gen_error;
};
// start, start_link, start_monitor.
class start_error : public gen_error {
  public:
    start_error(exit_reason reason, pid existing = {})
        : gen_error("start", std::move(reason)), existing_(existing) {}
    // For {already_started, _}: the process that has the name.
    pid existing() const noexcept { return existing_; }

  private:
    pid existing_;
};

// The reply type of a request: `using reply_type = T;` in the request, or a specialisation of
// erl::reply_of. Terms answer terms.
template <typename Req>
struct reply_of {
    using type = typename Req::reply_type;
};
template <>
struct reply_of<term> {
    using type = term;
};
template <typename Req>
using reply_type_t = typename reply_of<std::remove_cvref_t<Req>>::type;
template <typename Req>
concept request = requires {
    typename reply_of<std::remove_cvref_t<Req>>::type;
};

namespace detail {

// The name of T, from the compiler (for reports and error reasons).
template <typename T>
constexpr std::string_view type_name_of() noexcept {
    std::string_view p = __PRETTY_FUNCTION__;
    auto start = p.find("T = ");
    if (start == std::string_view::npos) return "?";
    start += 4;
    auto end = p.find_first_of(";]", start);
    return p.substr(start, end - start);
}
// Computed once, at compile time (a call on the hot path must not parse strings).
template <typename T>
inline constexpr std::string_view type_name_v = type_name_of<T>();
template <typename T>
constexpr std::string_view type_name() noexcept {
    return type_name_v<T>;
}

// The reply messages. `demonitored`: the server sent it and has removed the caller's monitor.
template <typename R>
struct gen_reply {
    ref tag;
    R value;
    bool demonitored = false;
};
struct gen_error_reply {
    ref tag;
    exit_reason reason;
    bool demonitored = false;
};

// Sends a reply message (gen_reply or gen_error_reply, built before the claim so that nothing can
// fail between the claim and the send) to a slot caller, if the caller still waits.
template <typename Reply>
bool send_reply(const pid& caller, call_slot& slot, envelope_ptr e) {
    if (!slot.claim()) return false;
    auto& r = static_cast<message_envelope<Reply>&>(*e).value;
    r.demonitored = drop_monitor_on_self(slot);
    deliver(caller, e.release());
    return true;
}

} // namespace detail

// Who asked: OTP's From = {Pid, Tag}. handle_call may keep it and answer later, from any
// process (or thread), with erl::reply(from, value). A caller reached through Erlang terms
// ({'$gen_call', {Pid, Tag}, Request}) has no slot and is answered with the term {Tag, Reply}.
struct from {
    pid caller;
    ref tag;
    detail::slot_ref slot; // null for a term caller
    term term_tag;         // the Tag of a term caller

    bool is_term_caller() const noexcept { return slot == nullptr; }
};

// Answers a call. The value's type must be the call's reply type (checked: otherwise throws
// erl::badarg); a term caller gets to_term(value). A reply to a caller that already timed out
// (or got one reply already) is dropped. Returns whether the reply was sent.
namespace detail {
// {Tag, Reply} to a term caller; through the caller's alias when Tag is [alias|Ref] and the
// caller is on another node (OTP 24+), so that late replies never reach its mailbox.
void send_term_reply(const pid& caller, const term& tag, term reply);
} // namespace detail

template <typename V>
bool reply(const from& f, V&& value) {
    using T = std::remove_cvref_t<V>;
    if (f.is_term_caller()) {
        if constexpr (term_convertible<T>) {
            detail::send_term_reply(f.caller, f.term_tag, to_term(value));
            return true;
        } else {
            throw badarg(fmt::format("erl::reply: {} cannot be sent to a term caller",
                                     detail::type_name<T>()));
        }
    }
    if (f.slot->reply_type != detail::type_key_of<T>())
        throw badarg(fmt::format("erl::reply: the call expects a {}, not a {}",
                                 f.slot->reply_type_name, detail::type_name<T>()));
    return detail::send_reply<detail::gen_reply<T>>(
        f.caller, *f.slot,
        detail::make_message<detail::gen_reply<T>>(
            detail::gen_reply<T>{f.tag, T(std::forward<V>(value))}));
}

// Where a request goes: a pid or a locally registered name. A server_ref says nothing about
// the server's type: only term requests can go through one (see erl::server<S>).
namespace detail {
bool is_local_node_name(atom node) noexcept; // a node of this program
}

class server_ref {
  public:
    server_ref() = default;
    server_ref(const pid& p) : pid_(p) {}                  // NOLINT
    server_ref(atom name) : name_(name), by_name_(true) {} // NOLINT
    // {Name, Node}: a server registered on another node (term calls and casts only).
    server_ref(const remote_name& r) : name_(r.name), node_(r.node), by_name_(true) {} // NOLINT
    bool by_name() const noexcept { return by_name_; }
    const pid& pid_value() const noexcept { return pid_; }
    atom name() const noexcept { return name_; }
    // The node of a {Name, Node} reference (null atom for local names and pids).
    atom node() const noexcept { return node_; }
    // On another node: a {Name, Node} or a pid of another node.
    bool is_remote() const noexcept {
        return by_name_ ? node_ != atom() && !detail::is_local_node_name(node_) : !pid_.is_local();
    }
    // The pid now: the pid itself, or whoever has the name (nullopt when nobody has).
    std::optional<pid> resolve() const {
        if (!by_name_) return pid_;
        return whereis(name_);
    }
    friend bool operator==(const server_ref&, const server_ref&) = default;

  private:
    pid pid_;
    atom name_;
    atom node_;
    bool by_name_ = false;
};

namespace detail {
// gen:call to a server of another node, in Erlang's terms: monitor, {'$gen_call', {Self, Tag},
// Request}, wait for {Tag, Reply} or the DOWN (noproc, {nodedown, Node}...) or the timeout.
term remote_term_call(const server_ref& srv, term request, std::chrono::milliseconds timeout,
                      bool infinite);
void remote_term_cast(const server_ref& srv, term request);
} // namespace detail

namespace detail {

// Answers a call with an error: the caller's call throws call_error(reason).
inline bool reply_error(const from& f, exit_reason reason) {
    if (f.is_term_caller()) {
        send_term_reply(f.caller, f.term_tag, term::tuple_from({atoms::error, to_term(reason)}));
        return true;
    }
    return send_reply<gen_error_reply>(
        f.caller, *f.slot,
        make_message<gen_error_reply>(gen_error_reply{f.tag, std::move(reason)}));
}

// An outstanding request: the monitor (whose ref is the tag), the slot and the mark. While the
// call's monitor remains, the caller's owner of the slot outlives the pending_call (the
// monitor's record holds it: call_slot::caller_hold).
template <typename R>
struct pending_call {
    ref tag;
    slot_ref slot;
    mailbox_mark mark;
    pid server;

    pending_call() = default;
    pending_call(pending_call&&) noexcept = default;
    pending_call& operator=(pending_call&& o) noexcept {
        if (this != &o) {
            release_slot();
            tag = o.tag;
            slot = std::move(o.slot);
            mark = o.mark;
            server = o.server;
        }
        return *this;
    }
    ~pending_call() { release_slot(); }

  private:
    void release_slot() noexcept {
        if (slot && slot->caller_index != call_slot::no_index) {
            slot->caller_hold = 1;
            slot.detach();
        }
    }
};

struct no_payload {};

// One call's request, in one allocation: the reply slot (with its count), the signal that
// carries the monitor and the request, the request message (M) and what the message refers to
// (P: a typed request's job). The `from` inside the message keeps the block alive while the
// request exists; the caller's pending_call, while the call is outstanding; copies of that
// `from`, while someone may still reply. It is made with those first two owners, in message
// memory (the scheduler's cache of freed blocks: cheaper than malloc, freed on any thread).
template <typename M, typename P>
struct call_block final : call_slot {
    call_signal signal;
    P payload;
    alignas(message_envelope<M>) unsigned char message[sizeof(message_envelope<M>)];

    explicit call_block(P p) : call_slot(2, &free_block), payload(std::move(p)) {}
    static call_block* make(P p) { return new_in_message_memory<call_block>(std::move(p)); }
    static void free_block(call_slot* s) noexcept {
        delete_in_message_memory(static_cast<call_block*>(s));
    }
    // The message's destroy: ends it in place; the block goes with its last owner, only after.
    // While the server still has the call's monitor, the monitor's record takes the request's
    // owner over (only the server's thread sees the record then; see call_slot).
    static void destroy_message(envelope* e) noexcept {
        auto* m = static_cast<message_envelope<M>*>(e);
        call_slot* s = m->value.f.slot.detach();
        const pid caller = m->value.f.caller;
        m->~message_envelope<M>();
        if (!s) return;
        if (s->server_index.load(std::memory_order_relaxed) != call_slot::no_index)
            s->server_hold = 1;
        else
            release_request_owner(s, caller);
    }
    static constexpr envelope_ops message_ops{type_key_of<M>(), &destroy_message};
};

// Monitors the server and sends it make_msg(from, payload) (one signal: call_signal.hpp).
// Throws call_error(noproc) when the name is not registered, and erl::badarg for a pid of
// another node (only term requests go there: erl::call(server_ref, term)).
template <typename R, typename MakeMsg, typename P = no_payload>
pending_call<R> start_call(const server_ref& t, std::string_view operation, MakeMsg&& make_msg,
                           P payload = {}) {
    using M = std::invoke_result_t<MakeMsg&, from, P&>;
    using block = call_block<M, P>;
    auto server = t.resolve();
    if (!server) throw call_error(operation, exit_reason::noproc());
    call_start start = begin_call();
    const pid& me = start.self;
    if (*server == me) throw call_error(operation, exit_reason(atom("calling_self")));
    if (server->node() != me.node() && !server->is_local()) // (the caller's node is local)
        throw badarg(fmt::format("erl::{}: {} is a process of node {}: only term requests "
                                 "(erl::call(server_ref, erl::term)) go to other nodes",
                                 operation, *server, server->node()));
    pending_call<R> pc;
    pc.mark = mailbox_mark{start.mark};
    pc.tag = start.tag;
    pc.server = *server;
    block* b = block::make(std::move(payload));
    pc.slot = slot_ref::adopt(b);              // the block's two first owners: the caller...
    slot_ref for_request = slot_ref::adopt(b); // ...and the request
    call_signal* signal = &b->signal;
    b->reply_type = type_key_of<R>();
    b->reply_type_name = type_name<R>();
    auto* msg = ::new (static_cast<void*>(b->message)) message_envelope<M>(
        std::in_place, make_msg(from{me, pc.tag, std::move(for_request), term()}, b->payload));
    msg->set_ops(block::message_ops);
    signal->request = &msg->value.f;
    signal->message = msg;
    send_call_signal(*start.process, *server, envelope_ptr(signal));
    return pc;
}

// What waiting produced.
template <typename R>
struct call_outcome {
    std::optional<R> value;
    std::optional<exit_reason> error; // set with value empty: failed
    bool down = false;                // the error is the server's end (the monitor is gone)
    bool demonitored = false;         // the server removed the monitor when it replied
    bool timed_out() const noexcept { return !value && !error; }
};

// After a reply: the monitor goes (locally when the server has removed it already).
template <typename R>
void end_monitor(const pending_call<R>& pc, bool demonitored) {
    if (demonitored)
        forget_monitor(*pc.slot);
    else
        end_call_monitor(*pc.slot, pc.tag);
}

template <typename R, typename Rep, typename Period>
call_outcome<R> wait_call(const pending_call<R>& pc, std::chrono::duration<Rep, Period> timeout,
                          bool infinite) {
    using out = call_outcome<R>;
    const ref& tag = pc.tag;
    auto on_reply = guard([&tag](const gen_reply<R>& r) { return r.tag == tag; },
                          [](gen_reply<R>&& r) {
                              return out{std::move(r.value), {}, false, r.demonitored};
                          });
    auto on_error = guard([&tag](const gen_error_reply& r) { return r.tag == tag; },
                          [](gen_error_reply&& r) {
                              return out{{}, std::move(r.reason), false, r.demonitored};
                          });
    auto on_down = guard([&tag](const down_msg& d) { return d.id == tag; },
                         [](down_msg&& d) {
                             return out{{}, std::move(d.reason), true};
                         });
    out o =
        infinite
            ? receive(pc.mark, on_reply, on_error, on_down, after(infinity, [] { return out{}; }))
            : receive(pc.mark, on_reply, on_error, on_down, after(timeout, [] { return out{}; }));
    if (!o.down && !o.timed_out()) end_monitor(pc, o.demonitored);
    return o;
}

// The timeout path: abandon the slot so that a late reply is dropped by its sender; if the
// reply was already committed, take it (it is in the signal queue already). The monitor has
// gone first, so whatever the reply says about it needs nothing more.
template <typename R>
call_outcome<R> abandon_call(const pending_call<R>& pc) {
    end_call_monitor(*pc.slot, pc.tag);
    if (pc.slot->abandon()) return {};
    const ref tag = pc.tag;
    return receive(pc.mark,
                   guard([tag](const gen_reply<R>& r) { return r.tag == tag; },
                         [](gen_reply<R>&& r) {
                             return call_outcome<R>{std::move(r.value), {}};
                         }),
                   guard([tag](const gen_error_reply& r) { return r.tag == tag; },
                         [](gen_error_reply&& r) {
                             return call_outcome<R>{{}, std::move(r.reason)};
                         }));
}

template <typename Rep, typename Period>
bool is_infinite(std::chrono::duration<Rep, Period> d) noexcept {
    return d == std::chrono::duration<Rep, Period>::max();
}

// The whole of gen:call: returns the reply or throws call_error.
template <typename R, typename MakeMsg, typename Rep, typename Period, typename P = no_payload>
R do_call(const server_ref& t, std::string_view operation, MakeMsg&& make_msg,
          std::chrono::duration<Rep, Period> timeout, P payload = {}) {
    auto pc = start_call<R>(t, operation, std::forward<MakeMsg>(make_msg), std::move(payload));
    auto o = wait_call(pc, timeout, is_infinite(timeout));
    if (o.timed_out()) o = abandon_call(pc);
    if (o.value) return std::move(*o.value);
    throw call_error(operation, o.error ? *o.error : exit_reason(atoms::timeout));
}

} // namespace detail

// OTP 23's asynchronous requests: send_request returns a request id; the answer is collected
// later with wait_response, receive_response or check_response.
template <typename R>
class request_id {
  public:
    request_id() = default;
    const ref& tag() const noexcept { return call_.tag; }
    pid server() const noexcept { return call_.server; }
    bool valid() const noexcept { return call_.slot != nullptr; }

    // For the free functions below.
    explicit request_id(detail::pending_call<R> c) : call_(std::move(c)) {}
    detail::pending_call<R>& pending() noexcept { return call_; }
    const detail::pending_call<R>& pending() const noexcept { return call_; }

  private:
    detail::pending_call<R> call_;
};

// The outcome of waiting on a request: the reply or nothing yet (timeout); a dead server or an
// error answer throws call_error.
template <typename R, typename Rep, typename Period>
std::optional<R> wait_response(request_id<R>& id, std::chrono::duration<Rep, Period> timeout) {
    auto o = detail::wait_call(id.pending(), timeout, detail::is_infinite(timeout));
    if (o.value) return std::move(o.value);
    if (o.error) throw call_error("wait_response", *o.error);
    return std::nullopt; // still pending: wait again, or give up with receive_response
}
template <typename R>
R wait_response(request_id<R>& id) {
    return *wait_response(id, std::chrono::steady_clock::duration::max());
}

// Like wait_response, but a timeout abandons the request: a late reply never arrives, and the
// call throws call_error(timeout).
template <typename R, typename Rep, typename Period>
R receive_response(request_id<R>& id, std::chrono::duration<Rep, Period> timeout) {
    auto& pc = id.pending();
    auto o = detail::wait_call(pc, timeout, detail::is_infinite(timeout));
    if (o.timed_out()) o = detail::abandon_call(pc);
    if (o.value) return std::move(*o.value);
    throw call_error("receive_response", o.error ? *o.error : exit_reason(atoms::timeout));
}

// Whether a message the caller received itself (with a catch-all) is the answer to `id`:
// nullopt when it is not (the message is left untouched); the reply when it is; throws
// call_error when it is the server's DOWN or an error answer.
template <typename R>
std::optional<R> check_response(any_message& msg, request_id<R>& id) {
    const ref& tag = id.tag();
    if (auto* r = msg.get_if<detail::gen_reply<R>>(); r && r->tag == tag) {
        detail::end_monitor(id.pending(), r->demonitored);
        return std::move(r->value);
    }
    if (auto* e = msg.get_if<detail::gen_error_reply>(); e && e->tag == tag) {
        detail::end_monitor(id.pending(), e->demonitored);
        throw call_error("check_response", e->reason);
    }
    if (auto* d = msg.get_if<down_msg>(); d && d->id == tag)
        throw call_error("check_response", d->reason);
    return std::nullopt;
}

} // namespace erl
