// Processes: spawn, self, exit, yield.
#pragma once

#include <cstddef>
#include <functional>
#include <new>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

#include <erl/detail/process_api.hpp>
#include <erl/exit_reason.hpp>
#include <erl/pid.hpp>

namespace erl {

// Thrown when a call that needs a calling process (receive, self, link...) is made from a plain
// thread.
class not_in_process : public std::logic_error {
  public:
    explicit not_in_process(const char* operation)
        : std::logic_error(std::string("erl::") + operation +
                           " must be called from inside an erlcpp process") {}
};

struct spawn_options {
    // Virtual stack size in bytes; 0 takes the runtime's default (64 KiB, 256 KiB under ASan).
    // Only the pages a process touches use memory.
    std::size_t stack_size = 0;
    // Link the new process to the caller before it runs (spawn_link).
    bool link = false;
    // A service of the runtime itself (distribution's net_kernel, connections): not waited for
    // by runtime::wait()/run() and not counted in runtime_statistics::processes.
    bool system = false;
};

namespace detail {

template <typename F, typename... Args>
struct closure {
    F fn;
    std::tuple<Args...> args;

    static void construct(void* where, void* source) {
        auto* src = static_cast<closure*>(source);
        ::new (where) closure{std::move(src->fn), std::move(src->args)};
    }
    static void run(void* self) {
        auto* c = static_cast<closure*>(self);
        std::apply(
            [c](auto&&... a) { std::invoke(std::move(c->fn), std::forward<decltype(a)>(a)...); },
            std::move(c->args));
    }
    static void destroy(void* self) noexcept { static_cast<closure*>(self)->~closure(); }
};

template <typename F, typename... Args>
pid spawn_in(runtime_impl* rt, const spawn_options& options, F&& fn, Args&&... args) {
    using closure_t = closure<std::decay_t<F>, std::decay_t<Args>...>;
    static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                  "erl::spawn: the function cannot be called with these arguments");
    // The closure is built on the caller's stack first, then moved to where it waits for the
    // process's first run (spawn_process).
    closure_t staged{std::forward<F>(fn),
                     std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
    closure_ops ops{sizeof(closure_t),
                    alignof(closure_t),
                    &closure_t::construct,
                    &closure_t::run,
                    &closure_t::destroy,
                    &staged,
                    std::is_nothrow_move_constructible_v<closure_t>};
    return spawn_process(rt, options, ops);
}

} // namespace detail

// Runs `fn(args...)` as a new process of the caller's runtime and returns its pid. The process
// ends when fn returns (reason normal) or throws (an uncaught exception becomes the reason
// {exception, Type, What} and is logged as a crash report). From a plain thread use
// erl::runtime::spawn.
template <typename F, typename... Args>
requires(!std::is_same_v<std::remove_cvref_t<F>, spawn_options>) pid spawn(F&& fn, Args&&... args) {
    return detail::spawn_in(nullptr, spawn_options{}, std::forward<F>(fn),
                            std::forward<Args>(args)...);
}

template <typename F, typename... Args>
pid spawn(const spawn_options& options, F&& fn, Args&&... args) {
    return detail::spawn_in(nullptr, options, std::forward<F>(fn), std::forward<Args>(args)...);
}

// The calling process's pid; throws not_in_process on a plain thread.
pid self();

// Ends the calling process with `reason` by unwinding its stack (destructors run). Like Erlang's
// exit/1: trapping exits does not stop it.
[[noreturn]] void exit(exit_reason reason);

// Lets other processes run; the caller continues later. A long computation that calls nothing
// of erlcpp's cannot be preempted, so it should call yield() now and then.
void yield();

// Whether `p` is a live process of this program (a dead or remote pid gives false).
bool is_alive(const pid& p);

// The scheduler thread running the caller, numbered from 1 like Erlang's
// erlang:system_info(scheduler_id); 0 on a plain thread. A process may move to another
// scheduler at any call that can suspend, so this is a snapshot.
unsigned scheduler_id() noexcept;

namespace detail {
// Unwinds a hibernating process's stack; like exit_exception, not a std::exception.
struct hibernate_exception {};
[[noreturn]] void hibernate_raw(void* continuation, void (*run)(void*),
                                void (*destroy)(void*) noexcept);
} // namespace detail

// Hibernates the calling process, like Erlang's erlang:hibernate/3: its stack is unwound
// (destructors run) and all its pages are given back, so the waiting process costs only its
// control block and `continuation`. When a signal arrives (or at once, when a message is already
// in the mailbox), the process calls `continuation()` on a fresh stack; when that returns, the
// process ends with reason normal. Whatever the continuation needs must be inside it.
template <typename F>
[[noreturn]] void hibernate_with(F&& continuation) {
    using C = std::decay_t<F>;
    detail::hibernate_raw(
        new C(std::forward<F>(continuation)), [](void* c) { (*static_cast<C*>(c))(); },
        [](void* c) noexcept { delete static_cast<C*>(c); });
}

} // namespace erl
