// receive: selective receive with typed handlers, guards, a catch-all and `after`.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <erl/detail/callable_traits.hpp>
#include <erl/detail/envelope.hpp>
#include <erl/detail/message_list.hpp>
#include <erl/detail/process_api.hpp>
#include <erl/term_convert.hpp>

namespace erl {

// A handler whose function only sees messages of its parameter type that satisfy `pred`.
template <typename T, typename Pred, typename F>
struct guarded_handler {
    Pred pred;
    F fn;
};

// `erl::guard(pred, fn)`: fn(T) handles only the messages of type T for which pred(const T&)
// holds, e.g. only the reply that carries a given ref.
template <typename Pred, typename F>
auto guard(Pred pred, F fn) {
    using param = typename detail::callable_traits<F>::param;
    return guarded_handler<std::remove_cvref_t<param>, Pred, F>{std::move(pred), std::move(fn)};
}

// A handler for erl::term messages that have the shape of a T (erl::from_term<T> succeeds):
// fn gets the converted T. Messages from other nodes always arrive as erl::term; this receives
// them as C++ types:
//   erl::receive(erl::as<point>([](point p) { ... }));
template <typename T, typename F>
struct term_as_handler {
    F fn;
    std::optional<T> converted; // set by a successful match, consumed by the call
};
template <typename T, typename F>
auto as(F fn) {
    static_assert(term_convertible<T>, "erl::as<T>: T needs a term conversion (erl::from_term)");
    return term_as_handler<T, F>{std::move(fn), std::nullopt};
}

// A message of any type, handed to a catch-all handler (`[](erl::any_message m) {...}`).
class any_message {
  public:
    explicit any_message(detail::envelope_ptr e) noexcept : env_(std::move(e)) {}
    template <typename T>
    bool is() const noexcept {
        return env_->type() == detail::type_key_of<T>();
    }
    // The value when the message is a T, else nullptr.
    template <typename T>
    T* get_if() noexcept {
        return is<T>() ? &static_cast<detail::message_envelope<T>*>(env_.get())->value : nullptr;
    }

  private:
    detail::envelope_ptr env_;
};

template <typename F>
struct after_handler {
    std::chrono::steady_clock::duration timeout;
    F fn;
    bool infinite = false;
};

struct no_action {
    void operator()() const noexcept {}
};

// `erl::after(timeout, fn)`, last argument of receive: fn runs when no message matched within
// `timeout`. after(0ms, ...) polls: it looks at the mailbox once and never waits.
template <typename Rep, typename Period, typename F = no_action>
auto after(std::chrono::duration<Rep, Period> timeout, F fn = {}) {
    auto d = std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
    if (d.count() < 0) d = std::chrono::steady_clock::duration::zero();
    return after_handler<F>{d, std::move(fn)};
}

// `erl::after(erl::infinity, ...)` never times out (handy when the timeout is a variable).
struct infinity_t {};
inline constexpr infinity_t infinity{};
template <typename F = no_action>
auto after(infinity_t, F fn = {}) {
    return after_handler<F>{std::chrono::steady_clock::duration::max(), std::move(fn), true};
}

// A position in the caller's mailbox: a receive given the mark looks only at messages that
// arrived after it was taken (the BEAM's recv_mark), so waiting for a reply costs the same
// however many unrelated messages are queued. Take it just before sending the request.
struct mailbox_mark {
    std::uint64_t id = 0;
};
mailbox_mark mark_mailbox();

namespace detail {

template <typename H>
struct is_after : std::false_type {};
template <typename F>
struct is_after<after_handler<F>> : std::true_type {};

template <typename H>
struct handler_info_base {
    using param = typename callable_traits<H>::param;
    using value_type = std::remove_cvref_t<param>;
    using result = typename callable_traits<H>::result;
    static constexpr bool catch_all = std::is_same_v<value_type, any_message>;
    static bool matches(H&, envelope* e) noexcept {
        return catch_all || e->type() == type_key_of<value_type>();
    }
};
template <typename T, typename Pred, typename F>
struct handler_info_base<guarded_handler<T, Pred, F>> {
    using param = typename callable_traits<F>::param;
    using value_type = T;
    using result = typename callable_traits<F>::result;
    static constexpr bool catch_all = false;
    static bool matches(guarded_handler<T, Pred, F>& h, envelope* e) {
        return e->type() == type_key_of<T>() &&
               h.pred(std::as_const(static_cast<message_envelope<T>*>(e)->value));
    }
};

template <typename T, typename F>
struct handler_info_base<term_as_handler<T, F>> {
    using param = typename callable_traits<F>::param;
    using value_type = term;
    using result = typename callable_traits<F>::result;
    static constexpr bool catch_all = false;
    static bool matches(term_as_handler<T, F>& h, envelope* e) {
        if (e->type() != type_key_of<term>()) return false;
        try {
            h.converted.emplace(from_term<T>(static_cast<message_envelope<term>*>(e)->value));
            return true;
        } catch (const term_conversion_error&) {
            return false;
        }
    }
};

template <typename H>
struct handler_info : handler_info_base<std::remove_cvref_t<H>> {};

template <typename H>
decltype(auto) call_handler(H& h, envelope_ptr& e) {
    using info = handler_info<H>;
    using param = typename info::param;
    if constexpr (requires { h.converted; }) {
        return h.fn(std::move(*h.converted));
    } else {
        auto& fn = [&]() -> auto& {
            if constexpr (requires { h.pred; }) {
                return h.fn;
            } else {
                return h;
            }
        }
        ();
        if constexpr (info::catch_all) {
            return fn(any_message(std::move(e)));
        } else {
            auto& value = static_cast<message_envelope<typename info::value_type>*>(e.get())->value;
            if constexpr (std::is_lvalue_reference_v<param> &&
                          !std::is_const_v<std::remove_reference_t<param>>) {
                return fn(value);
            } else {
                return fn(std::move(value));
            }
        }
    }
}

template <typename H>
using handler_result_t = typename handler_info<H>::result;

template <typename... Hs>
struct receive_result {
    using type = std::common_type_t<Hs...>;
};
template <>
struct receive_result<> {
    using type = void;
};

// Runs handler `index` (one of I and those after it). The result is returned straight from the
// handler's call (no std::optional in between: the hot paths' results are constructed once).
template <typename R, std::size_t I, typename Tuple>
R dispatch_from([[maybe_unused]] Tuple& hs, [[maybe_unused]] std::size_t index,
                [[maybe_unused]] envelope_ptr& e) {
    if constexpr (I >= std::tuple_size_v<Tuple>) { // no handlers (a receive of only an after())
        __builtin_unreachable();
    } else if constexpr (I + 1 == std::tuple_size_v<Tuple>) {
        if constexpr (std::is_void_v<R>)
            call_handler(std::get<I>(hs), e);
        else
            return R(call_handler(std::get<I>(hs), e));
    } else {
        if (index != I) return dispatch_from<R, I + 1>(hs, index, e);
        if constexpr (std::is_void_v<R>)
            call_handler(std::get<I>(hs), e);
        else
            return R(call_handler(std::get<I>(hs), e));
    }
}

template <typename R, typename Tuple, std::size_t... I>
R dispatch(Tuple& hs, std::size_t index, envelope_ptr& e, std::index_sequence<I...>) {
    return dispatch_from<R, 0>(hs, index, e);
}

template <typename Tuple, std::size_t... I>
std::size_t find_handler([[maybe_unused]] Tuple& hs, [[maybe_unused]] envelope* e,
                         std::index_sequence<I...>) {
    std::size_t found = sizeof...(I);
    (void)((handler_info<std::tuple_element_t<I, Tuple>>::matches(std::get<I>(hs), e)
                ? (found = I, true)
                : false) ||
           ...);
    return found;
}

// The core loop. The scan keeps its place (the BEAM's save pointer): after a wake-up only the
// messages that arrived meanwhile are looked at.
// Stands for "no after()": waits for ever.
struct no_after {
    clock::duration timeout{};
    bool infinite = true;
};

template <typename R, typename After, typename... Hs>
R receive_loop(std::uint64_t mark, After* after, Hs&... hs) {
    auto [self_ptr, box_ptr] = begin_receive();
    process_control& self = *self_ptr;
    message_list& box = *box_ptr;
    auto handlers = std::tie(hs...);
    using seq = std::index_sequence_for<Hs...>;
    const bool has_deadline = after && !after->infinite;
    const bool poll = has_deadline && after->timeout == clock::duration::zero();
    // The clock is read only when the receive has to wait: a message that is already there
    // costs no clock read and no timer.
    clock::time_point deadline = clock::time_point::max();
    envelope* scanned = nullptr; // last message looked at and refused
    for (;;) {
        for (envelope* e = scanned ? scanned->next : box.first_after_mark(mark); e; e = e->next) {
            std::size_t i = find_handler(handlers, e, seq{});
            if (i != sizeof...(Hs)) {
                box.remove(e);
                envelope_ptr owned(e);
                count_reduction(self);
                return dispatch<R>(handlers, i, owned, seq{});
            }
            scanned = e;
        }
        bool expired = poll;
        if (has_deadline && !poll) {
            auto now = clock::now();
            if (deadline == clock::time_point::max()) deadline = now + after->timeout;
            expired = now >= deadline;
        }
        if (expired) {
            if constexpr (!std::is_same_v<After, no_after>) {
                if constexpr (std::is_void_v<R>) {
                    after->fn();
                    return;
                } else {
                    return after->fn();
                }
            }
        }
        wait_signals(self, deadline, has_deadline);
    }
}

template <typename After, typename Tuple, typename Seq>
struct result_with_after;
template <typename After, typename Tuple, std::size_t... I>
struct result_with_after<After, Tuple, std::index_sequence<I...>> {
    using after_result = std::invoke_result_t<decltype(std::declval<After&>().fn)&>;
    using type =
        std::common_type_t<after_result, handler_result_t<std::tuple_element_t<I, Tuple>>...>;
};

template <typename R, typename... Hs, std::size_t... I>
R receive_with_after(std::uint64_t mark, std::tuple<Hs&...> args, std::index_sequence<I...>) {
    auto& last = std::get<sizeof...(Hs) - 1>(args);
    return receive_loop<R>(mark, &last, std::get<I>(args)...);
}

template <typename... Hs>
decltype(auto) receive_impl(std::uint64_t mark, Hs&... hs) {
    constexpr std::size_t n = sizeof...(Hs);
    static_assert(n > 0, "erl::receive needs at least one handler or an after()");
    using all = std::tuple<Hs...>;
    using last_t = std::tuple_element_t<n - 1, all>;
    if constexpr (is_after<last_t>::value) {
        using R = typename result_with_after<last_t, all, std::make_index_sequence<n - 1>>::type;
        return receive_with_after<R>(mark, std::tie(hs...), std::make_index_sequence<n - 1>{});
    } else {
        using R = std::common_type_t<handler_result_t<Hs>...>;
        return receive_loop<R>(mark, static_cast<no_after*>(nullptr), hs...);
    }
}

} // namespace detail

// Waits for the first message in the mailbox that a handler accepts, removes it, runs that
// handler and returns its result. Handlers are callables taking one message type (by value,
// reference or rvalue reference), erl::guard(pred, fn), or a catch-all taking erl::any_message;
// they are tried in order for each message, oldest message first. Messages no handler accepts
// stay in the mailbox, in order. An erl::after(timeout, fn) as the last argument bounds the wait.
// Only callable inside a process. Exit signals that arrive while waiting act at once.
template <typename... Handlers>
decltype(auto) receive(Handlers&&... handlers) {
    if constexpr (sizeof...(Handlers) > 0 &&
                  std::is_same_v<
                      std::remove_cvref_t<std::tuple_element_t<0, std::tuple<Handlers...>>>,
                      mailbox_mark>) {
        return [](const mailbox_mark& m, auto&&... rest) -> decltype(auto) {
            return detail::receive_impl(m.id, rest...);
        }(handlers...);
    } else {
        return detail::receive_impl(0, handlers...);
    }
}

} // namespace erl
