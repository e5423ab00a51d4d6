// erl::sys — OTP's sys module for erlcpp's behaviours: system messages that every server loop
// handles whatever the user's types: get_state, replace_state, suspend/resume, get_status,
// trace, change_code, terminate. Each is a call (gen.hpp protocol) and throws call_error.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <erl/gen.hpp>

namespace erl {

namespace detail {

// A system message. `f` is the requester (for terminate: only its tag is used, nobody is
// answered; the requester watches for the DOWN).
struct sys_msg {
    enum class op { state, suspend, resume, trace, status, change_code, terminate };
    op what = op::status;
    from f;
    bool flag = false;
    exit_reason reason;
    // op::state: runs in the server with its state (type-checked by the function itself).
    std::function<void(void* state, type_key type, std::string_view type_name, const from&)> fn;
    term old_vsn, extra;
};

template <typename R, typename Rep, typename Period>
R sys_call(const server_ref& srv, sys_msg m, std::chrono::duration<Rep, Period> timeout) {
    return do_call<R>(
        srv, "sys",
        [&](from f, no_payload&) {
            m.f = std::move(f);
            return std::move(m);
        },
        timeout);
}

inline exit_reason wrong_state_type(std::string_view want, std::string_view have) {
    return exit_reason(atom("bad_call"), fmt::format("the state is a {}, not a {}", have, want));
}

} // namespace detail

namespace sys {

inline constexpr auto default_timeout = std::chrono::seconds(5);

// sys:get_status, as far as C++ can tell it.
struct status {
    pid process;
    atom name;  // '' when not registered
    pid parent; // the server itself when it has no parent (started without link)
    bool suspended = false;
    bool tracing = false;
    std::string server_type;
    std::string state; // fmt of the state when it is formattable, else empty
};

// sys:get_state: a copy of the server's state (its object, of class S).
template <typename S, typename Rep = std::int64_t, typename Period = std::ratio<1>>
S get_state(const server_ref& srv, std::chrono::duration<Rep, Period> timeout = default_timeout) {
    static_assert(std::is_copy_constructible_v<S>, "sys::get_state copies the state");
    detail::sys_msg m;
    m.what = detail::sys_msg::op::state;
    m.fn = [](void* state, detail::type_key type, std::string_view name, const from& f) {
        if (type != detail::type_key_of<S>()) {
            detail::reply_error(f, detail::wrong_state_type(detail::type_name<S>(), name));
            return;
        }
        reply(f, S(*static_cast<S*>(state)));
    };
    return detail::sys_call<S>(srv, std::move(m), timeout);
}

// sys:replace_state: runs fn(S&) inside the server (between two messages) and returns a copy of
// the new state. If fn throws, the state is left as fn left it and the caller gets
// call_error({exception, ...}); the server goes on.
template <typename S, typename F, typename Rep = std::int64_t, typename Period = std::ratio<1>>
S replace_state(const server_ref& srv, F fn,
                std::chrono::duration<Rep, Period> timeout = default_timeout) {
    static_assert(std::is_invocable_v<F&, S&>, "sys::replace_state: fn must take S&");
    detail::sys_msg m;
    m.what = detail::sys_msg::op::state;
    m.fn = [fn = std::move(fn)](void* state, detail::type_key type, std::string_view name,
                                const from& f) mutable {
        if (type != detail::type_key_of<S>()) {
            detail::reply_error(f, detail::wrong_state_type(detail::type_name<S>(), name));
            return;
        }
        S& s = *static_cast<S*>(state);
        try {
            fn(s);
        } catch (const detail::exit_exception&) {
            throw;
        } catch (...) {
            detail::reply_error(f, exit_reason::from_exception(std::current_exception()));
            return;
        }
        reply(f, S(s));
    };
    return detail::sys_call<S>(srv, std::move(m), timeout);
}

// sys:suspend: the server handles only system messages (and its parent's exit) until resume;
// calls and casts wait in its queue (a call times out unless resumed in time).
template <typename Rep = std::int64_t, typename Period = std::ratio<1>>
void suspend(const server_ref& srv, std::chrono::duration<Rep, Period> timeout = default_timeout) {
    detail::sys_msg m;
    m.what = detail::sys_msg::op::suspend;
    detail::sys_call<atom>(srv, std::move(m), timeout);
}
template <typename Rep = std::int64_t, typename Period = std::ratio<1>>
void resume(const server_ref& srv, std::chrono::duration<Rep, Period> timeout = default_timeout) {
    detail::sys_msg m;
    m.what = detail::sys_msg::op::resume;
    detail::sys_call<atom>(srv, std::move(m), timeout);
}

template <typename Rep = std::int64_t, typename Period = std::ratio<1>>
status get_status(const server_ref& srv,
                  std::chrono::duration<Rep, Period> timeout = default_timeout) {
    detail::sys_msg m;
    m.what = detail::sys_msg::op::status;
    return detail::sys_call<status>(srv, std::move(m), timeout);
}

// sys:trace: while on, the server logs every event (calls, casts, infos, timeouts, continues)
// through erl::log at level debug with kind `sys_trace`.
template <typename Rep = std::int64_t, typename Period = std::ratio<1>>
void trace(const server_ref& srv, bool on,
           std::chrono::duration<Rep, Period> timeout = default_timeout) {
    detail::sys_msg m;
    m.what = detail::sys_msg::op::trace;
    m.flag = on;
    detail::sys_call<atom>(srv, std::move(m), timeout);
}

// sys:change_code: calls the server's code_change(old_vsn, extra). The server must be
// suspended (call_error(not_suspended) otherwise), as in OTP.
template <typename Rep = std::int64_t, typename Period = std::ratio<1>>
void change_code(const server_ref& srv, term old_vsn, term extra,
                 std::chrono::duration<Rep, Period> timeout = default_timeout) {
    detail::sys_msg m;
    m.what = detail::sys_msg::op::change_code;
    m.old_vsn = std::move(old_vsn);
    m.extra = std::move(extra);
    detail::sys_call<atom>(srv, std::move(m), timeout);
}

} // namespace sys

} // namespace erl
