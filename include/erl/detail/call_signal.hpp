// How a gen call from C++ reaches a server of this program: the caller's monitor request and the
// request message travel as one signal, and a server that answers from its own process removes
// the monitor itself. Internal (erl/gen.hpp and the signals layer).
#pragma once

#include <utility>

#include <erl/detail/envelope.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>

namespace erl::detail {

// Kind signal_kind::call. When the server takes it in, the monitor (watcher `from`, ref `id`) is
// registered and then `message` joins the mailbox: the monitor is in place before the request
// can be handled, and the request keeps its place among the caller's other signals. A server
// that has already ended answers it as a monitor request (DOWN noproc). Whoever makes one sets
// `destroy` to free its own storage; destroying it before it was taken in destroys the message.
// `from` and `id` point into the message (its caller and tag: the same values, kept once, which
// keeps a whole request small enough for the scheduler's message cache); they are read only
// while the signal still holds the message.
struct call_signal : envelope {
    const pid* from = nullptr;
    const ref* id = nullptr;
    envelope* message = nullptr;

    call_signal() noexcept { kind = signal_kind::call; }
    // For `destroy` when the signal lives inside a bigger block that the message keeps alive.
    static void destroy_message(envelope* e) noexcept {
        if (envelope* m = std::exchange(static_cast<call_signal*>(e)->message, nullptr))
            m->destroy(m);
    }
};

// Sends `s` (a call_signal) from the calling process to `target`, a process of this program;
// the caller now monitors `target` with `s->id`. When `target` does not exist the caller gets a
// DOWN noproc for that ref, as from monitor(pid).
void send_call_signal(const pid& target, envelope_ptr s);

// In the server of a call: removes the caller's monitor `id` on the calling process, without a
// signal (the reply that follows tells the caller). False when there is no such monitor (the
// replier is another process, or the caller has already demonitored).
bool drop_monitor_on_self(const ref& id) noexcept;

// In the caller: forgets the monitor `id` it holds, without a signal, because its target has
// dropped it already (its reply said so). No DOWN can come for it any more.
void forget_monitor(const ref& id) noexcept;

} // namespace erl::detail
