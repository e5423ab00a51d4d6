// How a gen call from C++ reaches a server of this program: the caller's monitor request and the
// request message travel as one signal, and a server that answers from its own process removes
// the monitor itself. Internal (erl/gen.hpp and the signals layer).
#pragma once

#include <cstdint>
#include <utility>

#include <erl/detail/envelope.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>

namespace erl {
struct from; // erl/gen.hpp
}

namespace erl::detail {

struct call_slot;
struct process_control;

// Kind signal_kind::call. When the server takes it in, the monitor (watcher request->caller, ref
// request->tag) is registered and then `message` joins the mailbox: the monitor is in place
// before the request can be handled, and the request keeps its place among the caller's other
// signals. A server that has already ended answers it as a monitor request (DOWN noproc).
// Destroying it before it was taken in destroys the message. `request` points into the message
// (the caller, the tag and the call's slot: kept once, which keeps a whole request small enough
// for the scheduler's message cache); it is read only while the signal still holds the message.
struct call_signal : envelope {
    const from* request = nullptr;
    envelope* message = nullptr;

    // Freeing the signal frees the message when the signal still holds it: the signal lives
    // inside a bigger block that the message keeps alive.
    call_signal() noexcept : envelope(ops, signal_kind::call) {}
    static void destroy_message(envelope* e) noexcept {
        if (envelope* m = std::exchange(static_cast<call_signal*>(e)->message, nullptr))
            m->destroy();
    }
    static constexpr envelope_ops ops{nullptr, &destroy_message};
};

// A call's monitor is not in the monitor tables: the caller and the server each keep a record
// of it in a list of their own, found through the call's slot (call_slot::caller_index and
// server_index), so that the usual round trip (monitor, reply, demonitor) costs no look-up. It
// behaves as any monitor: the server's end sends the caller a DOWN, the caller's end or its
// demonitor (erl::demonitor with the tag works too) removes it on the server.

// The start of a call in the calling process: its pid, a mark in its mailbox (mark_mailbox()),
// and the call's tag, a fresh reference (from a range that make_ref() never uses, counted per
// thread: no atomic instruction). Throws not_in_process outside a process.
struct call_start {
    process_control* process; // for send_call_signal (nothing suspends in between)
    pid self;
    std::uint64_t mark;
    ref tag;
};
call_start begin_call();

// Sends `s` (a call_signal) from the calling process `p` (call_start::process) to `target`, a
// process of this program; the caller now monitors `target` with the request's tag. When
// `target` does not exist the caller gets a DOWN noproc for that tag, as from monitor(pid).
void send_call_signal(process_control& p, const pid& target, envelope_ptr s);

// In the server of a call: removes the caller's monitor of `slot`'s call on the calling process,
// without a signal (the reply that follows tells the caller). False when the calling process
// holds no such monitor (the replier is another process, or the caller has demonitored).
bool drop_monitor_on_self(call_slot& slot) noexcept;

// In the server, answering a call as its only possible replier (handle_call returned the reply:
// nobody else has seen the call's `from`): claims `slot`, removes the caller's monitor on the
// server (setting `demonitored`, a field of the reply) and sends `reply` (owned) to `caller`.
// When the caller waits softly on this thread it cannot run, nor give the call up, until this
// thread lets it: the claim is then a plain load and store, not a locked instruction. False
// (the reply dropped) when the caller has given up.
bool send_sole_reply(const pid& caller, call_slot& slot, envelope* reply, bool& demonitored);

// The request's owner of `slot` goes (a request message's end, when no record of the server holds
// it). When the only other owner is the caller's (its record still stands) and the caller cannot
// run until this thread lets it (it waits softly here, or is ready and held here), nobody else
// can change the count meanwhile: a plain store instead of a locked decrement.
void release_request_owner(call_slot* slot, const pid& caller) noexcept;

// In the caller: forgets the monitor of `slot`'s call, without a signal, because its target has
// dropped it already (its reply said so). No DOWN can come for it any more.
void forget_monitor(call_slot& slot) noexcept;

// In the caller: the monitor of `slot`'s call goes (the server is told), with the DOWN for
// `tag` flushed from the mailbox if it came already (demonitor(tag, flush)).
void end_call_monitor(call_slot& slot, const ref& tag);

} // namespace erl::detail
