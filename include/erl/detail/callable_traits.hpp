// The single parameter and the result of a handler, read from its call operator.
#pragma once

#include <type_traits>

namespace erl::detail {

template <typename F>
struct callable_traits : callable_traits<decltype(&std::remove_cvref_t<F>::operator())> {};

template <typename R, typename A>
struct callable_traits<R (*)(A)> {
    using result = R;
    using param = A;
};
template <typename R, typename A>
struct callable_traits<R (&)(A)> : callable_traits<R (*)(A)> {};
template <typename R, typename A>
struct callable_traits<R(A)> : callable_traits<R (*)(A)> {};
template <typename C, typename R, typename A>
struct callable_traits<R (C::*)(A)> : callable_traits<R (*)(A)> {};
template <typename C, typename R, typename A>
struct callable_traits<R (C::*)(A) const> : callable_traits<R (*)(A)> {};
template <typename C, typename R, typename A>
struct callable_traits<R (C::*)(A) noexcept> : callable_traits<R (*)(A)> {};
template <typename C, typename R, typename A>
struct callable_traits<R (C::*)(A) const noexcept> : callable_traits<R (*)(A)> {};
template <typename R, typename A>
struct callable_traits<R (*)(A) noexcept> : callable_traits<R (*)(A)> {};

// Nullary callables (after-handlers).
template <typename F>
struct nullary_result {
    using type = std::invoke_result_t<F&>;
};

} // namespace erl::detail
