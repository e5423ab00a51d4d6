// send: asynchronous, ordered per sender-receiver pair, never blocks.
#pragma once

#include <type_traits>
#include <utility>

#include <erl/detail/envelope.hpp>
#include <erl/detail/process_api.hpp>
#include <erl/pid.hpp>

namespace erl {

// Sends a copy (or the moved value) of `msg` to `to`. Sending to a process that has ended is a
// silent no-op, as in Erlang. Works from processes and from plain threads. The message type is
// any movable C++ type; the receiver picks it out by type in `receive`.
template <typename T>
void send(const pid& to, T&& msg) {
    using value_type = std::remove_cvref_t<T>;
    static_assert(std::is_move_constructible_v<value_type>, "erl::send: messages must be movable");
    detail::deliver(to, detail::make_message<value_type>(std::forward<T>(msg)));
}

// Builds the message in place.
template <typename T, typename... Args>
void send_new(const pid& to, Args&&... args) {
    detail::deliver(to, detail::make_message<T>(std::forward<Args>(args)...));
}

} // namespace erl
