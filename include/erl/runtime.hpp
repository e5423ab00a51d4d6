// erl::runtime — the scheduler threads and everything that runs on them.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include <erl/distribution.hpp>
#include <erl/pid.hpp>
#include <erl/process.hpp>

namespace erl {

struct runtime_options {
    // Scheduler threads; 0 means one per hardware thread.
    unsigned schedulers = 0;
    // Default virtual stack size per process in bytes; 0 means 64 KiB (256 KiB under ASan).
    std::size_t default_stack_size = 0;
    // Most processes alive at once (Erlang's +P); the table grows up to this.
    std::size_t max_processes = std::size_t(1) << 22;
    // Reductions per time slice: send, receive, spawn each count one (Erlang uses 4000).
    int reductions_per_slice = 4000;
    // Side threads for erl::blocking: at most this many blocking jobs run at once, the others
    // wait in order. 0 means 16. The threads start when first needed and live as long as the
    // runtime.
    unsigned blocking_threads = 0;
    // Makes the runtime a node of an Erlang cluster (EPMD registration, connections); the
    // constructor throws std::runtime_error when that fails. See <erl/node.hpp>.
    std::optional<distribution_options> distribution{};
};

// Counters that tests use to prove nothing leaked.
struct runtime_statistics {
    std::size_t processes = 0;      // alive
    std::size_t links = 0;          // link pairs held (each side counts one)
    std::size_t monitors = 0;       // monitors held by watchers
    std::size_t pending_timers = 0; // send_after timers not yet fired or cancelled
    std::size_t registered_names = 0;
    // erl::blocking jobs queued or on a pool thread (a job counts until its thread is done
    // with it, a moment after the caller got its result).
    std::size_t blocking_jobs = 0;
    std::size_t spawned_total = 0;
    // Stacks held by processes. A process takes its stack when it first runs and gives it back
    // when it ends, so spawned processes that have not run yet hold none.
    std::size_t stacks = 0;
};

// Owns N scheduler threads that run processes. Several runtimes may coexist in a program; each
// has its own processes, names and timers. A process's pid remembers its runtime, so erl::send
// reaches it from anywhere in the program.
class runtime {
  public:
    explicit runtime(runtime_options options = {});
    // Kills the processes that are still alive (their stacks unwind) and joins the threads.
    ~runtime();
    runtime(const runtime&) = delete;
    runtime& operator=(const runtime&) = delete;

    // Starts a process from outside (a plain thread such as main()) or inside.
    template <typename F, typename... Args>
    requires(!std::is_same_v<std::remove_cvref_t<F>, spawn_options>) pid
        spawn(F&& fn, Args&&... args) {
        return detail::spawn_in(impl_.get(), spawn_options{}, std::forward<F>(fn),
                                std::forward<Args>(args)...);
    }
    template <typename F, typename... Args>
    pid spawn(const spawn_options& options, F&& fn, Args&&... args) {
        return detail::spawn_in(impl_.get(), options, std::forward<F>(fn),
                                std::forward<Args>(args)...);
    }

    // Runs `fn(args...)` as the first process and blocks until every process has ended (main
    // returning does not end its children) or shutdown is requested; then shuts down.
    template <typename F, typename... Args>
    void run(F&& fn, Args&&... args) {
        spawn(std::forward<F>(fn), std::forward<Args>(args)...);
        wait();
        shutdown();
    }

    // Blocks until no process is alive or request_shutdown() was called.
    void wait();
    // Same, giving up after `timeout`; true when the condition holds.
    bool wait_for(std::chrono::steady_clock::duration timeout);
    // Makes wait() return. Safe from any thread and from processes.
    void request_shutdown() noexcept;
    // Kills every remaining process with reason `killed` (stacks unwind), waits for them to
    // end and joins the scheduler threads. Idempotent; called by the destructor. A process that
    // never calls into erlcpp (a pure computation loop) cannot be killed and delays this.
    // Throws std::logic_error when called from one of the runtime's own processes.
    void shutdown();

    unsigned schedulers() const noexcept;
    runtime_statistics statistics() const;
    // The node this runtime is (nonode@nohost until distribution names it).
    atom node() const noexcept;

    detail::runtime_impl* impl() const noexcept { return impl_.get(); }

  private:
    std::unique_ptr<detail::runtime_impl> impl_;
};

} // namespace erl
