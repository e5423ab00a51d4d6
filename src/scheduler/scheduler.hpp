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
#include "context/overflow.hpp"
#include "context/stack_pool.hpp"
#include "process/process_table.hpp"
#include "scheduler/message_cache.hpp"
#include "scheduler/run_queue.hpp"
#include "scheduler/timer_heap.hpp"

namespace erl::detail {

struct runtime_impl;
struct process_control;
class scheduler;

bool start_fresh(process_control& p, scheduler& s) noexcept;

class alignas(64) scheduler {
  public:
    scheduler(runtime_impl& rt, unsigned index);
    ~scheduler();

    void start();
    void join();

    // Queues `p` here; `from_owner` when called on this scheduler's own thread.
    void push(process_control* p, bool from_owner) noexcept;
    // Wakes this thread if it sleeps (new work, an earlier timer, shutdown).
    void notify() noexcept;
    // make_ready for a process of this scheduler's runtime, on this scheduler's thread: the
    // common case (a process wakes the one it sent to), inline.
    void ready_here(process_control* p) noexcept {
        p->sched = this;
        queue->push_local(p);
        if (sleepers_->load(std::memory_order_relaxed) > 0) share_work();
    }

    runtime_impl& rt;
    const unsigned index;
    execution_context ctx; // the thread's own stack while a process runs
    std::unique_ptr<scheduling_algorithm> queue;
    timer_heap timers;
    stack_cache stacks;
    slot_cache slots; // process-table slots kept for lock-free spawns
    message_cache messages;
    // Bumped between time slices; offline_bit while asleep (see process_table.hpp).
    std::atomic<std::uint64_t> quiescent{0};
    process_control* running = nullptr;
    // Scratch space for the I/O layer's reads (used between two switches, never across one).
    std::vector<char> io_scratch;
    std::atomic<bool> sleeping{false};
    // Set by a process that switches straight to another (see switch_out): the one it left,
    // whose switch the resumed process completes. Null when a switch comes from this thread's
    // own stack.
    process_control* handoff_from = nullptr;

    // Finishes the switch-out of `prev` (waiting or yielding) once its stack is left: keeps its
    // context and parks it, or queues it again. Runs on whichever stack was switched to.
    void complete_switch(process_control* prev, bctx::fcontext_t where) noexcept {
        prev->ctx.fctx = where;
        auto sp = static_cast<const char*>(where);
        if (sp < prev->deepest) prev->deepest = sp;
        if (prev->stack.guard == guard_kind::canary) check_canary(*prev);
        prev->reductions_total +=
            std::uint64_t(budget_ - (prev->reductions < budget_ ? prev->reductions : budget_));
        if (prev->why == switch_reason::yield || !prev->park()) queue->push_local(prev);
        // After a successful park another thread may already run prev: no more touching it.
    }
    // The process a process that stops running (why: wait or yield) should switch straight to,
    // or nullptr when it should go back to the scheduler loop (nothing ready here, or timers
    // or I/O are due for a look). Marks it running.
    process_control* take_handoff() noexcept {
        // The loop's duties come first when they are due.
        if (dispatches_ + 1 - timers_seen_at_ >= timer_check_interval ||
            dispatches_ + 1 - io_seen_at_ >= io_check_interval)
            return nullptr;
        process_control* next = queue->pop();
        if (!next) return nullptr;
        // A process that has not run yet gets its stack here; one coming out of hibernation
        // (or one no stack could be had for) needs the loop.
        if (next->hibernated | next->fresh) [[unlikely]] {
            if (next->hibernated || !start_fresh(*next, *this)) {
                resume_next_ = next;
                return nullptr;
            }
        }
        ++dispatches_;
        quiescent.store(++slices_, std::memory_order_release); // a time slice ends here too
        running = next;
        next->sched = this;
        next->reductions = budget_;
        return next;
    }
    eh_state* thread_eh() const noexcept { return eh_globals_; }

    static constexpr unsigned timer_check_interval = 32; // dispatches between timer checks
    static constexpr unsigned io_check_interval = 64;    // dispatches between I/O polls
    static constexpr unsigned balance_interval = 256;    // dispatches between load comparisons

  private:
    void share_work() noexcept;
    void loop();
    void run(process_control* p);
    void finish(process_control* p);
    void hibernate(process_control* p);
    process_control* find_work() noexcept;
    void fire_timers();
    void poll_io() noexcept;
    void balance() noexcept;
    void sleep();

    eh_state* eh_globals_ = nullptr;   // this thread's C++ exception globals
    const std::atomic<int>* sleepers_; // the runtime's count of sleeping schedulers
    const int budget_;                 // reductions per time slice
    std::mutex sleep_mutex_;
    std::condition_variable sleep_cv_;
    bool wake_pending_ = false;
    bool in_poll_ = false; // asleep in the I/O poller rather than on sleep_cv_
    std::vector<timer_entry*> due_;
    // Dispatches (time slices begun, by the loop or by a handoff) and when timers and I/O were
    // last looked at: a handoff chain must not keep either waiting.
    std::uint64_t dispatches_ = 0;
    std::uint64_t timers_seen_at_ = 0;
    std::uint64_t io_seen_at_ = 0;
    std::uint64_t balanced_at_ = 0;
    std::uint64_t slices_ = 0;
    process_control* resume_next_ = nullptr; // popped by a handoff that could not take it
    std::thread thread_;
};

// The scheduler the calling thread runs, or nullptr (out of line: see runtime-notes §4.2).
scheduler* current_scheduler() noexcept;

// What current_scheduler() reads. A process may suspend in a function and resume on another
// thread, and the compiler may keep a thread_local's address across the suspension; so only a
// function marked ERLCPP_READS_THREAD (out of line, and opaque to the optimiser's analysis of
// its callers) that reads it before any suspension, and never after, may read it directly: it
// saves the call to current_scheduler() on the hottest paths. Everything else calls
// current_scheduler().
extern constinit thread_local scheduler* tl_scheduler __attribute__((tls_model("initial-exec")));
#if defined(__clang__)
#define ERLCPP_READS_THREAD __attribute__((noinline))
#else
#define ERLCPP_READS_THREAD __attribute__((noinline, noipa))
#endif

// Makes a process runnable: on the calling scheduler when it belongs to the same runtime (so
// processes that talk stay together), else where the process last ran.
void make_ready(process_control* p) noexcept;
void make_ready(process_control* p, scheduler* here) noexcept;

// Takes a switched-out process's pending signals into it (messages to its mailbox, the others
// acted upon); never throws: an exit is only recorded.
void absorb_signals(process_control& p) noexcept;

// Builds a fresh first frame for a hibernated process (its closure starts from the top).
void restart_context(process_control& p) noexcept;

// Gives a process that has not run yet its stack and first frame (its function moves there
// from the staging block spawn put it in). False when no stack can be had.
bool start_fresh(process_control& p, scheduler& s) noexcept;
// Ends a process that could not start (no stack): reason system_limit, reported to its links
// and monitors like any exit. Runs on the scheduler's own stack.
void fail_start(process_control& p) noexcept;

// Switches the calling process out, straight to the next ready process of its scheduler when
// there is one (why: wait or yield), else to the scheduler loop; returns when it runs again.
void switch_out(process_control& p, switch_reason why) noexcept;

// The first thing a process does on a fresh stack (first run, or after hibernation): takes
// over from whoever switched to it. Returns the scheduler it runs on.
scheduler* process_started(bctx::transfer_t t) noexcept;

// A process whose function has ended leaves its stack for good.
[[noreturn]] void leave_for_good(process_control& p) noexcept;

} // namespace erl::detail
