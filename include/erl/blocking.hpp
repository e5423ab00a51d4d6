// erl::blocking: a blocking call (file I/O, a C library, name resolution) made on the runtime's
// side threads, so that only the calling process waits for it.
#pragma once

#include <functional>
#include <type_traits>
#include <utility>

#include <erl/detail/blocking_job.hpp>
#include <erl/detail/process_api.hpp>

namespace erl {

// Runs `fn(args...)` on one of the runtime's blocking threads and returns its result; the
// calling process waits meanwhile, in the manner of a receive, and the other processes keep its
// scheduler thread. An exception from fn reaches the caller as itself (same type, carried by a
// std::exception_ptr). fn and args are decay-copied into the job, as by std::thread, and called
// as rvalues there. Pass what fn uses by value: a killed caller's stack is gone while its job
// may still run, so a reference into it (std::ref, a [&] capture) is only safe for a caller
// that nothing kills. fn runs on a plain thread: inside it, erl::self(), receive and the like
// throw erl::not_in_process; erl::send works.
//
// At most runtime_options::blocking_threads jobs run at once (default 16); the rest wait in
// order of arrival. A caller that is killed while it waits (erl::exit(pid, kill), a linked
// crash, shutdown) unwinds at once, as it would in a receive; its job, if it had started, runs
// to its end on the pool thread and its result is destroyed there; if it had not started, it
// never does. The runtime's destructor drops queued jobs and waits for running ones.
//
// Outside any process (main(), a plain thread, or fn itself) the call simply runs fn on the
// calling thread. See docs/io.md.
template <typename F, typename... Args>
requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
    std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...> blocking(F&& fn, Args&&... args) {
    using task = detail::blocking_task<std::decay_t<F>, std::decay_t<Args>...>;
    using R = typename task::result_type;
    static_assert(std::is_void_v<R> || std::is_reference_v<R> || std::is_move_constructible_v<R>,
                  "erl::blocking: the result must be movable to reach the caller");
    if (!detail::current_process())
        return std::invoke(std::decay_t<F>(std::forward<F>(fn)),
                           std::decay_t<Args>(std::forward<Args>(args))...);
    detail::blocking_job_ptr job(new task(std::forward<F>(fn), std::forward<Args>(args)...));
    detail::run_blocking(job);
    return static_cast<task&>(*job).take();
}

} // namespace erl
