// send: asynchronous, ordered per sender-receiver pair, never blocks.
#pragma once

#include <type_traits>
#include <utility>

#include <erl/detail/envelope.hpp>
#include <erl/detail/process_api.hpp>
#include <erl/pid.hpp>
#include <erl/term_convert.hpp>

namespace erl {

// Sends a copy (or the moved value) of `msg` to `to`. Sending to a process that has ended is a
// silent no-op, as in Erlang. Works from processes and from plain threads. The message type is
// any movable C++ type; the receiver picks it out by type in `receive`.
namespace detail {
template <typename T>
term message_as_term(envelope& e) {
    return to_term(static_cast<message_envelope<T>&>(e).value);
}
// The conversion a message of type T takes to another node, or null when it has none.
template <typename T>
constexpr message_to_term remote_conversion() noexcept {
    if constexpr (term_convertible<T>) {
        return &message_as_term<T>;
    } else {
        return nullptr;
    }
}
} // namespace detail

// A pid of another node (distribution) takes only messages that are erl::term or have a term
// conversion (erl::to_term); another type sent there throws erl::badarg.
template <typename T>
void send(const pid& to, T&& msg) {
    using value_type = std::remove_cvref_t<T>;
    static_assert(std::is_move_constructible_v<value_type>, "erl::send: messages must be movable");
    detail::deliver(to, detail::make_message<value_type>(std::forward<T>(msg)).release(),
                    detail::remote_conversion<value_type>());
}

// Builds the message in place.
template <typename T, typename... Args>
void send_new(const pid& to, Args&&... args) {
    detail::deliver(to, detail::make_message<T>(std::forward<Args>(args)...).release(),
                    detail::remote_conversion<T>());
}

} // namespace erl
