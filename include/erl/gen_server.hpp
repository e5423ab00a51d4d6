// erl::gen_server — OTP's generic server as a C++ behaviour.
//
//   struct get_count { using reply_type = int; };
//   struct add { int n; };
//   struct counter : erl::gen_server<counter> {
//       int n = 0;
//       init_result init(int start) { n = start; return ok(); }
//       int handle_call(get_count) { return n; }            // reply at once
//       void handle_cast(add a) { n += a.n; }               // noreply
//   };
//   auto c = erl::start<counter>(10);
//   erl::cast(c, add{5});
//   int v = erl::call(c, get_count{});                      // 15
//
// The user's class is the server's state. Callbacks are found by overload resolution, so a call
// with a request the class has no handle_call for is a compile error. See docs/gen_server.md.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include <fmt/format.h>

#include <erl/gen.hpp>
#include <erl/link.hpp>
#include <erl/logger.hpp>
#include <erl/process.hpp>
#include <erl/sys.hpp>

namespace erl {

// What handle_info receives when a callback's timeout expires without a message (OTP's
// `timeout` info message).
struct timeout_msg {};

struct hibernate_t {};
// As the next action: wait for the next message hibernated (see docs/gen_server.md).
inline constexpr hibernate_t hibernate{};

struct server_result;

namespace detail {
// A pending handle_continue, built by gen_server<S>::continue_ (it knows S).
struct continuation {
    virtual ~continuation() = default;
    virtual server_result run(void* server) = 0;
    virtual std::string_view type() const noexcept = 0;
};
} // namespace detail

// What the server does after a callback, before (or instead of) its next message: nothing
// special, wait at most `timeout` (then handle_info(timeout_msg)), hibernate, or run
// handle_continue. Implicit from a duration, erl::infinity, erl::hibernate or continue_(x).
class next_action {
  public:
    enum class kind { none, timeout, hibernate, continue_ };
    next_action() = default;
    template <typename Rep, typename Period>
    next_action(std::chrono::duration<Rep, Period> t) // NOLINT
        : kind_(kind::timeout),
          timeout_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(t)) {
        if (timeout_.count() < 0) timeout_ = {};
    }
    next_action(infinity_t) noexcept {}                           // NOLINT
    next_action(hibernate_t) noexcept : kind_(kind::hibernate) {} // NOLINT
    explicit next_action(std::unique_ptr<detail::continuation> c) noexcept
        : kind_(kind::continue_), cont_(std::move(c)) {}

    kind what() const noexcept { return kind_; }
    std::chrono::steady_clock::duration timeout() const noexcept { return timeout_; }
    std::unique_ptr<detail::continuation> take_continuation() noexcept {
        kind_ = kind::none;
        return std::move(cont_);
    }

  private:
    kind kind_ = kind::none;
    std::chrono::steady_clock::duration timeout_{};
    std::unique_ptr<detail::continuation> cont_;
};

// The builders' results; each converts to the result types below.
struct noreply_t {
    next_action next;
};
struct stop_t {
    exit_reason reason;
};
template <typename V>
struct reply_t {
    V value;
    next_action next;
};
template <typename V>
struct stop_reply_t {
    exit_reason reason;
    V value;
};
struct ok_t {
    next_action next;
};
struct ignore_t {};

// handle_cast, handle_info, handle_continue: noreply(...) or stop(reason). (A callback may also
// return void: noreply.)
struct server_result {
    next_action next;
    std::optional<exit_reason> stop;

    server_result() = default;
    server_result(noreply_t n) : next(std::move(n.next)) {} // NOLINT
    server_result(stop_t s) : stop(std::move(s.reason)) {}  // NOLINT
};

// handle_call: reply(value[, next]), noreply([next]) (reply later with erl::reply(from, v)),
// stop(reason) or stop(reason, value). A handle_call may also return a plain R: reply(R).
template <typename R>
struct call_result {
    std::optional<R> reply;
    server_result result;

    call_result() = default;
    template <typename V>
    requires std::is_convertible_v<V, R> call_result(reply_t<V> r)
        : reply(std::move(r.value)) { // NOLINT
        result.next = std::move(r.next);
    }
    call_result(noreply_t n) : result(std::move(n)) {} // NOLINT
    call_result(stop_t s) : result(std::move(s)) {}    // NOLINT
    template <typename V>
    requires std::is_convertible_v<V, R> call_result(stop_reply_t<V> s)
        : reply(std::move(s.value)) { // NOLINT
        result.stop = std::move(s.reason);
    }
};

// init: ok([next]), ignore() (start returns an empty server) or stop(reason) (start throws
// start_error(reason)). init may also return void: ok().
struct init_result {
    enum class kind { ok, ignore, stop };
    kind what = kind::ok;
    next_action next;
    exit_reason reason;

    init_result() = default;
    init_result(ok_t o) : next(std::move(o.next)) {}                         // NOLINT
    init_result(ignore_t) : what(kind::ignore) {}                            // NOLINT
    init_result(stop_t s) : what(kind::stop), reason(std::move(s.reason)) {} // NOLINT
};

// The base of every server class S (CRTP). It holds nothing; it gives S the result builders
// and the default callbacks (terminate, code_change).
template <typename S>
class gen_server {
  public:
    using init_result = erl::init_result;
    template <typename R>
    using call_result = erl::call_result<R>;
    using result = server_result;

    // Default callbacks; S's own hide these.
    void terminate(const exit_reason&) {}
    void code_change(const term& /*old_vsn*/, const term& /*extra*/) {}

  protected:
    static ok_t ok(next_action next = {}) { return ok_t{std::move(next)}; }
    static ignore_t ignore() { return {}; }
    template <typename V>
    static reply_t<std::remove_cvref_t<V>> reply(V&& value, next_action next = {}) {
        return {std::forward<V>(value), std::move(next)};
    }
    // A deferred reply (same as erl::reply).
    template <typename V>
    static bool reply(const from& f, V&& value) {
        return erl::reply(f, std::forward<V>(value));
    }
    static noreply_t noreply(next_action next = {}) { return noreply_t{std::move(next)}; }
    static stop_t stop(exit_reason reason = {}) { return stop_t{std::move(reason)}; }
    template <typename V>
    static stop_reply_t<std::remove_cvref_t<V>> stop(exit_reason reason, V&& value) {
        return {std::move(reason), std::forward<V>(value)};
    }
    // handle_continue(c) runs before the next message (OTP's {continue, C}).
    template <typename C>
    static next_action continue_(C c);
};

namespace detail {

template <typename X>
server_result to_result(X&& x) {
    return server_result(std::forward<X>(x));
}

// Calls f; a void result means noreply.
template <typename F>
server_result as_result(F&& f) {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
        f();
        return server_result{};
    } else {
        return server_result(f());
    }
}

template <typename S, typename C>
struct continuation_of final : continuation {
    C value;
    explicit continuation_of(C c) : value(std::move(c)) {}
    server_result run(void* server) override {
        return as_result(
            [&] { return static_cast<S*>(server)->handle_continue(std::move(value)); });
    }
    std::string_view type() const noexcept override { return type_name<C>(); }
};

} // namespace detail

template <typename S>
template <typename C>
next_action gen_server<S>::continue_(C c) {
    static_assert(
        requires(S & s, C && v) { s.handle_continue(std::move(v)); },
        "continue_(x): the server has no handle_continue for this type");
    return next_action(std::make_unique<detail::continuation_of<S, C>>(std::move(c)));
}

// Whether server S handles request Req in handle_call (with or without `from`).
template <typename S, typename Req>
concept handles_call = requires(S& s, Req&& r, const from& f) {
    s.handle_call(std::move(r), f);
}
|| requires(S& s, Req&& r) {
    s.handle_call(std::move(r));
};
template <typename S, typename Msg>
concept handles_cast = requires(S& s, Msg&& m) {
    s.handle_cast(std::move(m));
};
template <typename S, typename Msg>
concept handles_info = requires(S& s, Msg&& m) {
    s.handle_info(std::move(m));
};

// A typed handle on a server of class S: a pid or a registered name. Calls and casts through it
// are checked against S's callbacks at compile time. Empty (false) after init returned ignore.
template <typename S>
class server : public server_ref {
  public:
    server() = default;
    explicit server(const pid& p) : server_ref(p) {}
    explicit server(atom name) : server_ref(name) {}
    explicit operator bool() const noexcept { return by_name() || !pid_value().is_null(); }
    pid get_pid() const { return pid_value(); }
};

namespace detail {

// A call as it travels: the request, with the code that runs it in an S (made by the caller,
// who knows S and Req). One pointer to constant data and a function rather than virtual
// functions: the server reads the types on every call (a plain load, not a call), and the job
// lives and dies inside the request's call_block, so it needs no virtual destructor either.
struct call_job {
    struct kind {
        type_key server_type;
        std::string_view request_type;
        // Runs handle_call; sends the reply unless there is none yet or it must wait for
        // terminate (then `late_reply` sends it).
        server_result (*run)(call_job& self, void* server, const from& f,
                             std::function<void()>& late_reply);
    };
    const kind* what;
};
struct gen_call_msg {
    from f;
    call_job* job; // in the request's call_block, which `f` keeps alive
};
struct cast_job {
    virtual ~cast_job() = default;
    virtual type_key server_type() const noexcept = 0;
    virtual std::string_view request_type() const noexcept = 0;
    virtual server_result run(void* server) = 0;
};
struct gen_cast_msg {
    std::unique_ptr<cast_job> job;
};
// Term requests work whatever the server's class.
struct gen_term_call {
    from f;
    term request;
};
struct gen_term_cast {
    term request;
};

template <typename R, typename X>
call_result<R> to_call_result(X&& x) {
    using T = std::remove_cvref_t<X>;
    if constexpr (std::is_constructible_v<call_result<R>, T&&>) {
        return call_result<R>(std::forward<X>(x));
    } else {
        static_assert(std::is_convertible_v<T, R>,
                      "handle_call must return call_result<R>, a builder (reply, noreply, stop) or "
                      "a value convertible to the request's reply_type");
        return call_result<R>(reply_t<R>{R(std::forward<X>(x)), {}});
    }
}

// Answers a typed call's caller (never a term caller, and the slot expects an R: the call was
// made for this request type) without erl::reply's checks, as its only possible replier: the
// value handle_call returned, when handle_call did not see the `from`.
template <typename R, typename V>
void reply_typed(const from& f, V&& value) {
    auto* e = make_message<gen_reply<R>>(gen_reply<R>{f.tag, R(std::forward<V>(value))}).release();
    send_sole_reply(f.caller, *f.slot, e,
                    static_cast<message_envelope<gen_reply<R>>*>(e)->value.demonitored);
}

template <typename S, typename Req>
server_result run_call(S& s, Req&& req, const from& f, std::function<void()>& late_reply) {
    using R = reply_type_t<Req>;
    using Q = std::remove_cvref_t<Req>;
    // A handle_call that returns the reply itself (the common case): no call_result in between.
    if constexpr (!std::is_same_v<Q, term> && !requires { s.handle_call(std::move(req), f); }) {
        using X = std::remove_cvref_t<decltype(s.handle_call(std::move(req)))>;
        if constexpr (!std::is_constructible_v<call_result<R>, X&&> &&
                      std::is_convertible_v<X, R>) {
            reply_typed<R>(f, s.handle_call(std::move(req)));
            return server_result{};
        }
    }
    call_result<R> cr = [&] {
        if constexpr (requires { s.handle_call(std::move(req), f); })
            return to_call_result<R>(s.handle_call(std::move(req), f));
        else
            return to_call_result<R>(s.handle_call(std::move(req)));
    }();
    if (cr.reply) {
        if (cr.result.stop) {
            late_reply = [f, v = std::move(*cr.reply)]() mutable { erl::reply(f, std::move(v)); };
        } else {
            erl::reply(f, std::move(*cr.reply));
        }
    }
    return std::move(cr.result);
}

template <typename S, typename Req>
struct call_job_of final : call_job {
    Req req;
    explicit call_job_of(Req r) : call_job{&kind_of}, req(std::move(r)) {}
    call_job_of(call_job_of&& o) noexcept(std::is_nothrow_move_constructible_v<Req>)
        : call_job(o), req(std::move(o.req)) {}
    static server_result run_job(call_job& self, void* server, const from& f,
                                 std::function<void()>& late) {
        return run_call(*static_cast<S*>(server), std::move(static_cast<call_job_of&>(self).req), f,
                        late);
    }
    static constexpr kind kind_of{type_key_of<S>(), type_name<Req>(), &run_job};
};

template <typename S, typename Msg>
struct cast_job_of final : cast_job {
    Msg msg;
    explicit cast_job_of(Msg m) : msg(std::move(m)) {}
    type_key server_type() const noexcept override { return type_key_of<S>(); }
    std::string_view request_type() const noexcept override { return type_name<Msg>(); }
    server_result run(void* server) override {
        return as_result([&] { return static_cast<S*>(server)->handle_cast(std::move(msg)); });
    }
};

struct start_ack {
    ref tag;
    init_result::kind what = init_result::kind::ok;
    exit_reason reason;
    pid existing;
};

inline exit_reason bad_call_reason(std::string_view what) {
    return exit_reason(atom("bad_call"), std::string(what));
}

inline bool is_orderly(const exit_reason& r) noexcept {
    return r.is_normal() || r.is_shutdown();
}

// The receive loop of one server.
template <typename S>
class server_loop {
  public:
    server_loop(std::unique_ptr<S> s, pid parent, atom name, bool trace)
        : owned_(std::move(s)), s_(*owned_), parent_(parent), name_(name), tracing_(trace) {}

    [[noreturn]] void run(next_action next) {
        next_ = std::move(next);
        for (;;) {
            if (next_.what() == next_action::kind::continue_) {
                auto c = next_.take_continuation();
                last_ = {"continue", c->type(), pid()};
                trace_event("continue {}", c->type());
                apply(guarded([&] { return c->run(&s_); }));
                continue;
            }
            wait_one();
        }
    }

  private:
    struct last_message {
        std::string_view kind;
        std::string_view type;
        pid sender;
    };

    template <typename... A>
    void trace_event(fmt::format_string<A...> f, A&&... a) {
        if (!tracing_) return;
        log_event e;
        e.level = log_level::debug;
        e.kind = atom("sys_trace");
        e.process = self();
        e.name = name_;
        e.text = fmt::format("*DBG* {} {}", self(), fmt::format(f, std::forward<A>(a)...));
        log(e);
    }

    void wait_one() {
        if (suspended_) {
            // Only system messages and the parent's exit; everything else waits in the queue.
            receive([this](sys_msg& m) { handle_sys(m); },
                    guard([this](const exit_msg& m) { return m.from == parent_; },
                          [this](exit_msg m) { parent_exit(m); }));
            return;
        }
        auto on_call = [this](gen_call_msg& m) { handle_call_msg(m); };
        auto on_cast = [this](gen_cast_msg& m) { handle_cast_msg(m); };
        auto on_term_call = [this](gen_term_call& m) {
            handle_term_call(m.f, std::move(m.request));
        };
        auto on_term_cast = [this](gen_term_cast& m) { handle_term_cast(std::move(m.request)); };
        auto on_sys = [this](sys_msg& m) { handle_sys(m); };
        auto on_exit = guard([this](const exit_msg& m) { return m.from == parent_; },
                             [this](exit_msg m) { parent_exit(m); });
        auto on_term = guard([](const term& t) { return is_gen_term(t); },
                             [this](term t) { handle_term_message(std::move(t)); });
        auto on_any = [this](any_message m) { handle_any(m); };
        if (next_.what() == next_action::kind::timeout) {
            auto t = next_.timeout();
            next_ = {};
            receive(on_call, on_cast, on_term_call, on_term_cast, on_sys, on_exit, on_term, on_any,
                    after(t, [this] {
                        trace_event("timeout");
                        info(timeout_msg{}, "timeout");
                    }));
        } else if (next_.what() == next_action::kind::hibernate) {
            hibernate();
        } else {
            next_ = {};
            receive(on_call, on_cast, on_term_call, on_term_cast, on_sys, on_exit, on_term, on_any);
        }
    }

    // Hibernation: the server's state moves into the continuation, the process's stack is
    // unwound and given back, and a fresh loop takes over on a new stack at the next message.
    [[noreturn]] void hibernate() {
        trace_event("hibernate");
        hibernate_with([s = std::move(owned_), parent = parent_, name = name_, tracing = tracing_,
                        suspended = suspended_]() mutable {
            server_loop loop(std::move(s), parent, name, tracing);
            loop.suspended_ = suspended;
            loop.run(next_action{});
        });
    }

    // Runs a callback; an exception ends the server (terminate, report, exit). An erl::exit or
    // an exit signal passes through untouched.
    template <typename F>
    server_result guarded(F&& f) {
        try {
            return f();
        } catch (const exit_exception&) {
            throw;
        } catch (...) {
            terminate_and_exit(exit_reason::from_exception(std::current_exception()));
        }
    }

    void apply(server_result r) {
        if (r.stop) terminate_and_exit(std::move(*r.stop));
        next_ = std::move(r.next);
    }

    void handle_call_msg(gen_call_msg& m) {
        call_job& job = *m.job;
        const call_job::kind& k = *job.what;
        last_ = {"call", k.request_type, m.f.caller};
        trace_event("got call {} from {}", k.request_type, m.f.caller);
        if (k.server_type != type_key_of<S>()) {
            reply_error(m.f, bad_call_reason(fmt::format("{} sent to a server of type {}",
                                                         k.request_type, type_name<S>())));
            return;
        }
        std::function<void()> late;
        server_result r = guarded([&] { return k.run(job, &s_, m.f, late); });
        // (next_ is none while a message is handled: wait_one clears it before it receives)
        if (r.stop || r.next.what() != next_action::kind::none) apply(r, late);
    }

    void apply(server_result& r, std::function<void()>& late) {
        if (r.stop) terminate_and_exit(std::move(*r.stop), std::move(late));
        next_ = std::move(r.next);
    }

    void handle_cast_msg(gen_cast_msg& m) {
        last_ = {"cast", m.job->request_type(), pid()};
        trace_event("got cast {}", m.job->request_type());
        if (m.job->server_type() != type_key_of<S>()) {
            log_warning(fmt::format("cast {} sent to a server of type {}: dropped",
                                    m.job->request_type(), type_name<S>()));
            return;
        }
        apply(guarded([&] { return m.job->run(&s_); }));
    }

    void handle_term_call(const from& f, term request) {
        last_ = {"call", "erl::term", f.caller};
        trace_event("got call {} from {}", request, f.caller);
        if constexpr (handles_call<S, term>) {
            std::function<void()> late;
            server_result r = guarded([&] { return run_call(s_, std::move(request), f, late); });
            apply(r, late);
        } else {
            reply_error(f, bad_call_reason(
                               fmt::format("{} has no handle_call for erl::term", type_name<S>())));
        }
    }

    void handle_term_cast(term request) {
        last_ = {"cast", "erl::term", pid()};
        trace_event("got cast {}", request);
        if constexpr (handles_cast<S, term>) {
            apply(guarded(
                [&] { return as_result([&] { return s_.handle_cast(std::move(request)); }); }));
        } else {
            log_warning(
                fmt::format("unexpected term cast {}: no handle_cast for erl::term", request));
        }
    }

    // Erlang's gen protocol in terms: {'$gen_call', {Pid, Tag}, Request}, {'$gen_cast', Request}.
    static bool is_gen_call(const term& t) {
        static const atom gen_call("$gen_call");
        return t.is_tagged_tuple(gen_call, 3) && t[1].is_tuple(2) && t[1][0].is_pid();
    }
    static bool is_gen_term(const term& t) {
        static const atom gen_cast("$gen_cast");
        return is_gen_call(t) || t.is_tagged_tuple(gen_cast, 2);
    }
    void handle_term_message(term t) {
        if (is_gen_call(t)) {
            from f{t[1][0].as_pid(), ref(), nullptr, t[1][1]};
            handle_term_call(f, t[2]);
        } else {
            handle_term_cast(t[1]);
        }
    }

    // An info message M: handle_info(M) if S has one, else S's catch-all
    // handle_info(erl::any_message&), else a warning (OTP logs unhandled info messages too).
    template <typename M>
    void info(M&& m, std::string_view type) {
        using T = std::remove_cvref_t<M>;
        last_ = {"info", type, pid()};
        if constexpr (handles_info<S, T>) {
            trace_event("got info {}", type);
            apply(guarded([&] { return as_result([&] { return s_.handle_info(std::move(m)); }); }));
        } else if constexpr (handles_info<S, any_message&>) {
            any_message a(make_message<T>(std::forward<M>(m)));
            trace_event("got info {}", type);
            apply(guarded([&] { return as_result([&] { return s_.handle_info(a); }); }));
        } else {
            unhandled(type);
        }
    }

    template <typename T>
    bool try_info(any_message& m) {
        if constexpr (handles_info<S, T>) {
            if (T* v = m.get_if<T>()) {
                info(std::move(*v), type_name<T>());
                return true;
            }
        }
        return false;
    }
    template <typename... Ts>
    bool try_infos(any_message& m, std::tuple<Ts...>*) {
        return (try_info<Ts>(m) || ...);
    }

    // Every other message: the core's down_msg, exit_msg, terms, S::info_types (a std::tuple of
    // the message types S handles in handle_info), then the catch-all.
    void handle_any(any_message& m) {
        if (try_info<down_msg>(m) || try_info<exit_msg>(m) || try_info<term>(m)) return;
        if constexpr (requires { typename S::info_types; }) {
            if (try_infos(m, static_cast<typename S::info_types*>(nullptr))) return;
        }
        last_ = {"info", "(any message)", pid()};
        if constexpr (handles_info<S, any_message&>) {
            trace_event("got info (any message)");
            apply(guarded([&] { return as_result([&] { return s_.handle_info(m); }); }));
        } else {
            unhandled("of a type the server does not handle");
        }
    }

    void unhandled(std::string_view type) {
        log_warning(fmt::format("unexpected info message {}: no handle_info for it", type));
    }

    void log_warning(std::string text) {
        log_event e;
        e.level = log_level::warning;
        e.kind = atom("gen_server");
        e.process = self();
        e.name = name_;
        e.text = fmt::format("** Generic server {} ({}): {}", self(), name_, text);
        log(e);
    }

    void parent_exit(const exit_msg& m) {
        last_ = {"info", "exit_msg from parent", m.from};
        terminate_and_exit(m.reason);
    }

    // OTP's terminate/2 path: terminate, crash report unless the reason is orderly, the reply
    // of stop(reason, value), then exit.
    [[noreturn]] void terminate_and_exit(exit_reason reason, std::function<void()> late = {}) {
        try {
            s_.terminate(reason);
        } catch (const exit_exception&) {
            throw;
        } catch (...) {
            reason = exit_reason::from_exception(std::current_exception());
        }
        if (!is_orderly(reason)) report(reason);
        if (late) late();
        erl::exit(std::move(reason));
    }

    void report(const exit_reason& reason) {
        log_event e;
        e.level = log_level::error;
        e.kind = atom("crash_report");
        e.process = self();
        e.name = name_;
        e.reason = reason;
        std::string state;
        if constexpr (fmt::is_formattable<S>::value) {
            state = fmt::format("{}", s_);
        } else {
            state = std::string(type_name<S>());
        }
        std::string last = last_.kind.empty() ? std::string("(none)")
                                              : fmt::format("{} {}", last_.kind, last_.type);
        if (!last_.sender.is_null()) last += fmt::format(" from {}", last_.sender);
        e.text = fmt::format("** Generic server {} ({}) terminating\n"
                             "** Last message in was {}\n"
                             "** When server state == {}\n"
                             "** Reason for termination ==\n** {}",
                             self(), name_, last, state, reason);
        log(e);
    }

    void handle_sys(sys_msg& m) {
        switch (m.what) {
        case sys_msg::op::state:
            m.fn(&s_, type_key_of<S>(), type_name<S>(), m.f);
            return;
        case sys_msg::op::suspend:
            suspended_ = true;
            erl::reply(m.f, atoms::ok);
            return;
        case sys_msg::op::resume:
            suspended_ = false;
            erl::reply(m.f, atoms::ok);
            return;
        case sys_msg::op::trace:
            tracing_ = m.flag;
            erl::reply(m.f, atoms::ok);
            return;
        case sys_msg::op::status: {
            sys::status st;
            st.process = self();
            st.name = name_;
            st.parent = parent_;
            st.suspended = suspended_;
            st.tracing = tracing_;
            st.server_type = std::string(type_name<S>());
            if constexpr (fmt::is_formattable<S>::value) st.state = fmt::format("{}", s_);
            erl::reply(m.f, std::move(st));
            return;
        }
        case sys_msg::op::change_code:
            if (!suspended_) {
                reply_error(m.f, exit_reason(atom("not_suspended")));
                return;
            }
            try {
                s_.code_change(m.old_vsn, m.extra);
            } catch (const exit_exception&) {
                throw;
            } catch (...) {
                reply_error(m.f, exit_reason::from_exception(std::current_exception()));
                return;
            }
            erl::reply(m.f, atoms::ok);
            return;
        case sys_msg::op::terminate:
            last_ = {"system", "terminate", m.f.caller};
            terminate_and_exit(m.reason);
        }
    }

    std::unique_ptr<S> owned_;
    S& s_;
    pid parent_;
    atom name_;
    bool tracing_ = false;
    bool suspended_ = false;
    next_action next_;
    last_message last_{};
};

struct start_info {
    pid starter;
    ref tag;
    bool linked = false;
    atom name;
    bool trace = false;
};

template <typename S, typename... A>
init_result construct_and_init(std::unique_ptr<S>& srv, A&... args) {
    auto as_init = [](auto&& f) -> init_result {
        if constexpr (std::is_void_v<std::invoke_result_t<decltype(f)>>) {
            f();
            return ok_t{};
        } else {
            return init_result(f());
        }
    };
    if constexpr (requires(S & s) { s.init(std::move(args)...); }) {
        srv = std::make_unique<S>();
        return as_init([&] { return srv->init(std::move(args)...); });
    } else {
        static_assert(std::is_constructible_v<S, A&&...>,
                      "erl::start: the server has neither init(args...) nor a constructor "
                      "taking these arguments");
        srv = std::make_unique<S>(std::move(args)...);
        if constexpr (requires(S & s) { s.init(); }) {
            return as_init([&] { return srv->init(); });
        } else {
            return ok_t{};
        }
    }
}

// The server process's function: name, init, acknowledgement, loop.
template <typename S, typename... A>
void server_main(start_info info, A... args) {
    auto ack = [&](init_result::kind k, exit_reason r = {}, pid existing = {}) {
        send(info.starter, start_ack{info.tag, k, std::move(r), existing});
    };
    const atom none{};
    if (info.name != none) {
        try {
            register_name(info.name, self());
        } catch (const badarg&) {
            auto owner = whereis(info.name);
            ack(init_result::kind::stop,
                exit_reason(atom("already_started"), owner ? fmt::format("{}", *owner) : ""),
                owner ? *owner : pid());
            return; // normal
        }
    }
    std::unique_ptr<S> srv;
    init_result ir;
    try {
        ir = construct_and_init(srv, args...);
    } catch (const exit_exception& e) {
        ack(init_result::kind::stop, e.reason);
        throw;
    } catch (...) {
        auto reason = exit_reason::from_exception(std::current_exception());
        ack(init_result::kind::stop, reason);
        erl::exit(reason);
    }
    switch (ir.what) {
    case init_result::kind::ignore:
        ack(init_result::kind::ignore);
        return;
    case init_result::kind::stop:
        ack(init_result::kind::stop, ir.reason);
        erl::exit(ir.reason);
    case init_result::kind::ok:
        break;
    }
    ack(init_result::kind::ok);
    server_loop<S> loop(std::move(srv), info.linked ? info.starter : self(), info.name, info.trace);
    loop.run(std::move(ir.next));
}

enum class start_mode { plain, link, monitor };

inline bool trapping_exits() {
    bool was = process_flag(trap_exit, true);
    process_flag(trap_exit, was);
    return was;
}

} // namespace detail

struct start_options {
    // Register the server under this local name ('' = none); a taken name makes start throw
    // start_error({already_started, Pid}).
    atom name{};
    // How long to wait for init (infinity by default, as in OTP); on timeout the server is
    // killed and start throws start_error(timeout).
    std::chrono::steady_clock::duration timeout = std::chrono::steady_clock::duration::max();
    spawn_options spawn{};
    // Start with sys tracing on.
    bool trace = false;
};

namespace detail {

template <typename S, typename... Args>
std::pair<server<S>, ref> start_impl(start_mode mode, const start_options& o, Args&&... args) {
    static_assert(std::is_base_of_v<gen_server<S>, S>,
                  "a server class S must derive from erl::gen_server<S>");
    auto mark = mark_mailbox();
    start_info info{self(), make_ref(), mode == start_mode::link, o.name, o.trace};
    spawn_options so = o.spawn;
    so.link = mode == start_mode::link;
    pid child =
        spawn(so, &server_main<S, std::decay_t<Args>...>, info, std::forward<Args>(args)...);
    ref mon = monitor(child);
    const ref tag = info.tag;
    struct outcome {
        bool acked = false;
        start_ack ack;
        std::optional<exit_reason> died;
    };
    auto on_ack = guard([tag](const start_ack& a) { return a.tag == tag; },
                        [](start_ack a) {
                            return outcome{true, std::move(a), {}};
                        });
    auto on_down = guard([mon](const down_msg& d) { return d.id == mon; },
                         [](down_msg d) {
                             return outcome{false, {}, std::move(d.reason)};
                         });
    outcome out = is_infinite(o.timeout)
                      ? receive(mark, on_ack, on_down)
                      : receive(mark, on_ack, on_down, after(o.timeout, [] { return outcome{}; }));
    bool linked = mode == start_mode::link;
    // After a failure: wait for the end of the child (DOWN) and drop its EXIT (it comes: the
    // link exists and the caller traps exits).
    auto reap = [&] {
        if (!out.died) {
            out.died = receive(guard([mon](const down_msg& d) { return d.id == mon; },
                                     [](down_msg d) { return d.reason; }));
        }
        if (linked && trapping_exits()) {
            receive(guard([child](const exit_msg& m) { return m.from == child; }, [](exit_msg) {}));
        }
    };
    if (!out.acked && !out.died) { // timeout
        if (linked) unlink(child);
        linked = false;
        erl::exit(child, exit_reason::kill());
        reap();
        throw start_error(exit_reason(atoms::timeout));
    }
    if (!out.acked) {
        exit_reason r = *out.died;
        reap();
        throw start_error(r);
    }
    switch (out.ack.what) {
    case init_result::kind::ok:
        if (mode != start_mode::monitor) {
            demonitor(mon, demonitor_option::flush);
            mon = ref();
        }
        return {server<S>(child), mon};
    case init_result::kind::ignore:
        reap();
        return {server<S>(), ref()};
    case init_result::kind::stop:
        break;
    }
    reap();
    throw start_error(out.ack.reason, out.ack.existing);
}

} // namespace detail

// Starts a server of class S: spawns it, runs init(args...) (or S(args...)) in it and returns
// when init has returned. Throws start_error when init returns stop(reason) or throws, when the
// name is taken, or on timeout; returns an empty server when init returns ignore(). From inside
// a process only.
template <typename S, typename... Args>
server<S> start(const start_options& o, Args&&... args) {
    return detail::start_impl<S>(detail::start_mode::plain, o, std::forward<Args>(args)...).first;
}
template <typename S, typename... Args>
requires(!(std::is_same_v<std::remove_cvref_t<Args>, start_options> ||
           ...)) server<S> start(Args&&... args) {
    return start<S>(start_options{}, std::forward<Args>(args)...);
}
// Same, linked to the caller (the caller is the server's parent: if it traps exits, the
// server's terminate runs when the parent exits).
template <typename S, typename... Args>
server<S> start_link(const start_options& o, Args&&... args) {
    return detail::start_impl<S>(detail::start_mode::link, o, std::forward<Args>(args)...).first;
}
template <typename S, typename... Args>
requires(!(std::is_same_v<std::remove_cvref_t<Args>, start_options> ||
           ...)) server<S> start_link(Args&&... args) {
    return start_link<S>(start_options{}, std::forward<Args>(args)...);
}
// Same, monitored: also returns the monitor's ref (a down_msg comes when the server ends).
template <typename S, typename... Args>
std::pair<server<S>, ref> start_monitor(const start_options& o, Args&&... args) {
    return detail::start_impl<S>(detail::start_mode::monitor, o, std::forward<Args>(args)...);
}
template <typename S, typename... Args>
requires(!(std::is_same_v<std::remove_cvref_t<Args>, start_options> ||
           ...)) std::pair<server<S>, ref> start_monitor(Args&&... args) {
    return start_monitor<S>(start_options{}, std::forward<Args>(args)...);
}

inline constexpr auto default_call_timeout = std::chrono::seconds(5);

// gen_server:call. Returns the reply (of type reply_type_t<Req>) or throws call_error: noproc
// (dead server, unregistered name), the server's exit reason (it ended during the call),
// timeout, or {bad_call, _}. A reply that comes after the timeout is dropped, never delivered.
template <typename S, typename Req, typename Rep = std::int64_t, typename Period = std::ratio<1>>
requires handles_call<S, std::remove_cvref_t<Req>> reply_type_t<Req>
call(const server<S>& srv, Req&& request,
     std::chrono::duration<Rep, Period> timeout = default_call_timeout) {
    using R = reply_type_t<Req>;
    using Q = std::remove_cvref_t<Req>;
    return detail::do_call<R>(
        srv, "call",
        [](from f, detail::call_job_of<S, Q>& job) {
            return detail::gen_call_msg{std::move(f), &job};
        },
        timeout, detail::call_job_of<S, Q>(Q(std::forward<Req>(request))));
}
template <typename S, typename Req>
requires handles_call<S, std::remove_cvref_t<Req>> reply_type_t<Req>
call(const server<S>& srv, Req&& request, infinity_t) {
    return call(srv, std::forward<Req>(request), std::chrono::steady_clock::duration::max());
}

// A term request to any gen_server (its handle_call for erl::term answers; one without such a
// handler answers {bad_call, _}). This is the path Erlang nodes' requests take.
template <typename Rep = std::int64_t, typename Period = std::ratio<1>>
term call(const server_ref& srv, term request,
          std::chrono::duration<Rep, Period> timeout = default_call_timeout) {
    if (srv.is_remote())
        return detail::remote_term_call(
            srv, std::move(request), std::chrono::duration_cast<std::chrono::milliseconds>(timeout),
            false);
    return detail::do_call<term>(
        srv, "call",
        [&](from f, detail::no_payload&) {
            return detail::gen_term_call{std::move(f), std::move(request)};
        },
        timeout);
}

// gen_server:cast: never fails, never waits (a dead server or unknown name drops it).
template <typename S, typename Msg>
requires handles_cast<S, std::remove_cvref_t<Msg>>
void cast(const server<S>& srv, Msg&& msg) {
    using M = std::remove_cvref_t<Msg>;
    auto p = srv.resolve();
    if (!p) return;
    send(*p, detail::gen_cast_msg{
                 std::make_unique<detail::cast_job_of<S, M>>(M(std::forward<Msg>(msg)))});
}
inline void cast(const server_ref& srv, term msg) {
    if (srv.is_remote()) return detail::remote_term_cast(srv, std::move(msg));
    auto p = srv.resolve();
    if (!p) return;
    send(*p, detail::gen_term_cast{std::move(msg)});
}

// Asynchronous call (OTP 23's send_request): the answer is collected with wait_response,
// receive_response or check_response (erl/gen.hpp). A dead server or unknown name is reported
// there (call_error(noproc)), not here.
template <typename S, typename Req>
requires handles_call<S, std::remove_cvref_t<Req>> request_id<reply_type_t<Req>>
send_request(const server<S>& srv, Req&& request) {
    using R = reply_type_t<Req>;
    using Q = std::remove_cvref_t<Req>;
    auto p = srv.resolve();
    if (!p) {
        // Like OTP: the error comes with the response. Monitor a dead pid to get the DOWN.
        detail::pending_call<R> pc;
        pc.mark = mark_mailbox();
        pc.tag = monitor(srv.name());
        pc.slot = detail::slot_ref::adopt(detail::call_slot::make_alone(1));
        return request_id<R>(std::move(pc));
    }
    return request_id<R>(detail::start_call<R>(
        *p, "send_request",
        [](from f, detail::call_job_of<S, Q>& job) {
            return detail::gen_call_msg{std::move(f), &job};
        },
        detail::call_job_of<S, Q>(Q(std::forward<Req>(request)))));
}

// gen_server:reply is erl::reply(from, value) (erl/gen.hpp).

// gen_server:stop: asks the server to terminate with `reason` and waits until it has ended.
// Throws call_error(noproc) when it does not exist, call_error(timeout) when it has not ended in
// time, call_error(R) when it ended with another reason R.
template <typename Rep = std::int64_t, typename Period = std::ratio<1>>
void stop(const server_ref& srv, exit_reason reason = {},
          std::chrono::duration<Rep, Period> timeout = std::chrono::duration<Rep, Period>::max()) {
    auto p = srv.resolve();
    if (!p) throw call_error("stop", exit_reason::noproc());
    ref mon = monitor(*p);
    detail::sys_msg m;
    m.what = detail::sys_msg::op::terminate;
    m.f = from{self(), mon, nullptr, term()};
    m.reason = reason;
    send(*p, std::move(m));
    auto got = detail::is_infinite(timeout)
                   ? receive(guard([mon](const down_msg& d) { return d.id == mon; },
                                   [](down_msg d) { return std::optional<exit_reason>(d.reason); }))
                   : receive(guard([mon](const down_msg& d) { return d.id == mon; },
                                   [](down_msg d) { return std::optional<exit_reason>(d.reason); }),
                             after(timeout, [] { return std::optional<exit_reason>(); }));
    if (!got) {
        demonitor(mon, demonitor_option::flush);
        throw call_error("stop", exit_reason(atoms::timeout));
    }
    if (!(*got == reason)) throw call_error("stop", *got);
}

} // namespace erl
