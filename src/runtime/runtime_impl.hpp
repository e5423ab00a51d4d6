// Everything a runtime owns. Internal.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <erl/atom.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>
#include <erl/runtime.hpp>

#include "context/stack_pool.hpp"
#include "io/blocking_pool.hpp"
#include "io/poller.hpp"
#include "process/process_table.hpp"
#include "runtime/per_scheduler_counter.hpp"
#include "runtime/remote.hpp"
#include "scheduler/scheduler.hpp"
#include "scheduler/timer_store.hpp"

namespace erl::detail {

struct runtime_impl {
    explicit runtime_impl(const runtime_options& options);
    ~runtime_impl();

    runtime_options options;
    atom node = atoms::nonode_nohost;
    std::uint32_t creation = 0; // unique per runtime in this program
    // detail::pid_home of this runtime's pids (set with node and creation).
    std::uint64_t home = 0;
    void set_identity(atom n, std::uint32_t c) noexcept {
        node = n;
        creation = c;
        home = pid_home(pid(n, 0, 0, c));
    }
    // Whether `p` names a process of this runtime (alive or not).
    bool owns(const pid& p) const noexcept { return pid_home(p) == home; }
    // send_after timers' entries. First, so destroyed last: the schedulers' free lists point
    // into them, and a process block released late looks its list up here.
    timer_store timer_entries;
    process_table table;
    stack_pool stacks;
    // Before `schedulers`: destroyed after their threads are joined.
    io_poller io{*this};
    // Set when this runtime is a distributed node (before any process runs; never changes).
    std::unique_ptr<remote_router> remote;
    std::vector<std::unique_ptr<scheduler>> schedulers;
    std::atomic<unsigned> next_scheduler{0}; // round robin for spawns from plain threads

    // Life and death.
    // Processes alive: spawned minus ended, counted on the thread that spawned or ended each
    // (a process may end on another scheduler than the one it was spawned on), so that neither
    // takes a locked instruction; live_count() sums them. Nobody is told when the sum reaches
    // zero: a scheduler that runs out of work looks (note_if_all_ended), and when the last
    // process ends every scheduler does.
    per_scheduler_counter live_on;
    // Spawn allowances (scheduler::renew_spawn_allowance): the widest one granted since the
    // epoch began, and the epoch, which moves on (voiding every allowance) when the room for
    // new processes has halved.
    std::atomic<std::size_t> widest_spawn_allowance{0};
    std::atomic<std::uint64_t> spawn_epoch{0};
    std::atomic<std::int64_t> live_outside{0}; // spawned by plain threads
    std::atomic<std::size_t> system_live{0};   // of which runtime services (spawn_options::system)
    std::atomic<std::size_t> spawned_total{0}; // by plain threads (see spawned_on_schedulers)
    std::atomic<bool> stopping{false};         // shutdown began: no new processes
    std::atomic<bool> threads_exit{false};
    std::mutex wait_mutex;
    std::condition_variable wait_cv;
    bool shutdown_requested = false;
    std::atomic<int> sleepers{0};
    std::atomic<int> idle{0}; // schedulers looking for work or asleep

    // Signals bookkeeping (for statistics: nothing may leak).
    std::atomic<std::int64_t> link_count{0};
    // Monitor table entries (both sides), changed by every monitor, demonitor and call: one
    // cell per scheduler (see count_monitors in signals/signals.hpp).
    per_scheduler_counter monitor_count;
    per_scheduler_counter stacks_held; // by processes (runtime_statistics::stacks)
    per_scheduler_counter spawned_on_schedulers;

    // Registered names.
    std::mutex names_mutex;
    std::unordered_map<atom, pid> names;

    // erl::blocking's side threads. Stopped first thing in ~runtime_impl, that is after
    // shutdown() has ended every process and joined the schedulers, never before: while a
    // process lives it may be waiting for a job, and stopping the pool under it would leave it
    // waiting for ever. A caller killed by shutdown does not wait for its job (the kill wakes
    // it), so shutdown itself never waits for the pool. Stopping the pool before any other
    // member goes matters too: a job that ends late still wakes its (dead) caller through the
    // process table.
    blocking_pool blocking;

    scheduler& pick_scheduler() noexcept {
        return *schedulers[next_scheduler.fetch_add(1, std::memory_order_relaxed) %
                           schedulers.size()];
    }
    // A sum of cells read one after another: a process spawned on one scheduler and ended on
    // another between two reads may be missed on one side only, so the sum may be off by a few
    // either way while processes come and go (never below zero).
    std::size_t live_count() const noexcept {
        std::int64_t n = live_on.sum() + live_outside.load(std::memory_order_acquire);
        return n > 0 ? std::size_t(n) : 0;
    }
    // No process but the runtime's own services is alive.
    bool only_services_left() const noexcept {
        return live_count() == system_live.load(std::memory_order_acquire);
    }
    // Called by a scheduler that found no work: wakes runtime::wait() and shutdown() when no
    // process (or none but the services) is left.
    void note_if_all_ended() noexcept;
    void wake_one_sleeper(scheduler* except) noexcept;
};

// The runtime whose processes carry `creation`, locked against its destruction while `fn` runs.
// Returns false when no such runtime exists.
template <typename Fn>
bool with_runtime(std::uint32_t creation, Fn&& fn);

std::mutex& runtimes_mutex() noexcept;
runtime_impl* find_runtime_locked(std::uint32_t creation) noexcept;

template <typename Fn>
bool with_runtime(std::uint32_t creation, Fn&& fn) {
    std::lock_guard lock(runtimes_mutex());
    runtime_impl* rt = find_runtime_locked(creation);
    if (!rt) return false;
    fn(*rt);
    return true;
}

} // namespace erl::detail
