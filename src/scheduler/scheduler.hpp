// One scheduler: an OS thread that runs ready processes, fires its timers, steals work when idle
// and sleeps when there is none.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "context/execution_context.hpp"
#include "context/stack_pool.hpp"
#include "process/process_table.hpp"
#include "scheduler/run_queue.hpp"
#include "scheduler/timer_heap.hpp"

namespace erl::detail {

struct runtime_impl;
struct process_control;

class scheduler {
  public:
    scheduler(runtime_impl& rt, unsigned index);
    ~scheduler();

    void start();
    void join();

    // Queues `p` here; `from_owner` when called on this scheduler's own thread.
    void push(process_control* p, bool from_owner) noexcept;
    // Wakes this thread if it sleeps (new work, an earlier timer, shutdown).
    void notify() noexcept;

    runtime_impl& rt;
    const unsigned index;
    execution_context ctx; // the thread's own stack while a process runs
    std::unique_ptr<scheduling_algorithm> queue;
    timer_heap timers;
    stack_cache stacks;
    slot_cache slots; // process-table slots kept for lock-free spawns
    // Bumped between time slices; offline_bit while asleep (see process_table.hpp).
    std::atomic<std::uint64_t> quiescent{0};
    process_control* running = nullptr;
    // Scratch space for the I/O layer's reads (used between two switches, never across one).
    std::vector<char> io_scratch;
    std::atomic<bool> sleeping{false};

  private:
    void loop();
    void run(process_control* p);
    void finish(process_control* p);
    void hibernate(process_control* p);
    process_control* find_work() noexcept;
    void fire_timers();
    void poll_io() noexcept;
    void sleep();

    eh_state* eh_globals_ = nullptr; // this thread's C++ exception globals
    std::mutex sleep_mutex_;
    std::condition_variable sleep_cv_;
    bool wake_pending_ = false;
    bool in_poll_ = false; // asleep in the I/O poller rather than on sleep_cv_
    std::vector<timer_entry*> due_;
    std::thread thread_;
};

// The scheduler the calling thread runs, or nullptr (out of line: see runtime-notes §4.2).
scheduler* current_scheduler() noexcept;

// Makes a process runnable: on the calling scheduler when it belongs to the same runtime (so
// processes that talk stay together), else where the process last ran.
void make_ready(process_control* p) noexcept;
void make_ready(process_control* p, scheduler* here) noexcept;

// Takes a switched-out process's pending signals into it (messages to its mailbox, the others
// acted upon); never throws: an exit is only recorded.
void absorb_signals(process_control& p) noexcept;

// Builds a fresh first frame for a hibernated process (its closure starts from the top).
void restart_context(process_control& p) noexcept;

// Switches the calling process out to its scheduler; returns when it runs again.
void switch_out(process_control& p, switch_reason why) noexcept;

} // namespace erl::detail
