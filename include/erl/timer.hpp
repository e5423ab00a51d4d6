// Timers: send_after, cancel_timer, sleep.
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include <erl/detail/envelope.hpp>
#include <erl/pid.hpp>
#include <erl/receive.hpp>
#include <erl/ref.hpp>

namespace erl {

namespace detail {
ref start_timer(const pid& to, std::chrono::steady_clock::duration delay, envelope_ptr msg);
}

// Delivers `msg` to `to` after `delay` and returns the timer's reference. Like Erlang's
// erlang:send_after/3, the timer is cancelled when `to` is a local process that ends first.
// Callable from processes and plain threads.
template <typename Rep, typename Period, typename T>
ref send_after(std::chrono::duration<Rep, Period> delay, const pid& to, T&& msg) {
    using value_type = std::remove_cvref_t<T>;
    return detail::start_timer(
        to, std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay),
        detail::make_message<value_type>(std::forward<T>(msg)));
}

// Cancels a timer from send_after. Returns true when it was still pending (its message will
// not arrive), false when it had already fired or been cancelled.
bool cancel_timer(const ref& timer);

// Suspends the calling process for `d` (a receive that accepts nothing, with an after).
// Messages keep arriving meanwhile; exit signals act at once.
template <typename Rep, typename Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
    receive(after(d));
}

} // namespace erl
