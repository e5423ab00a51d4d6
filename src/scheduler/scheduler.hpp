// One scheduler: an OS thread that runs ready processes, fires its timers, steals work when idle
// and sleeps when there is none.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "context/execution_context.hpp"
#include "context/overflow.hpp"
#include "context/stack_pool.hpp"
#include "process/process_table.hpp"
#include "scheduler/message_cache.hpp"
#include "scheduler/run_queue.hpp"
#include "scheduler/timer_store.hpp"
#include "scheduler/timer_wheel.hpp"
#include "scheduler/timers.hpp"

namespace erl::detail {

struct runtime_impl;
struct process_control;
class scheduler;

bool start_fresh(process_control& p, scheduler& s) noexcept;

// One generation of a scheduler's soft waiters: an array with each process's index in it, so
// that adding and removing touch only the process and the array's last one (a recent waiter,
// still in the caches), never a neighbour long asleep.
class soft_waiters {
  public:
    soft_waiters() = default;
    soft_waiters(const soft_waiters&) = delete;
    soft_waiters& operator=(const soft_waiters&) = delete;
    ~soft_waiters() { std::free(items_); }

    // False when the array cannot grow (no memory).
    bool add(process_control* p) noexcept {
        if (size_ == capacity_ && !grow()) return false;
        p->soft_index = size_;
        items_[size_++] = p;
        return true;
    }
    void remove(process_control* p) noexcept {
        process_control* moved = items_[--size_];
        items_[p->soft_index] = moved;
        moved->soft_index = p->soft_index;
    }
    process_control* last() const noexcept { return size_ ? items_[size_ - 1] : nullptr; }

  private:
    bool grow() noexcept {
        std::uint32_t n = capacity_ ? capacity_ * 2 : 64;
        void* more = std::realloc(items_, n * sizeof(process_control*));
        if (!more) return false;
        items_ = static_cast<process_control**>(more);
        capacity_ = n;
        return true;
    }
    process_control** items_ = nullptr;
    std::uint32_t size_ = 0;
    std::uint32_t capacity_ = 0;
};

// The processes spawned on one scheduler thread that have not run yet, in groups by spawner:
// a stack of groups, each in spawn order. The newest group's first process runs next, so that a
// tree of processes (each spawns some, then waits for their answers) is built and torn down
// depth first, its leaves running on the warm stacks the ones before gave back, instead of
// breadth first with every process of a level waiting at once, each on a page of its own. The
// processes of one spawner still run in the order it spawned them.
class spawn_groups {
  public:
    static constexpr std::size_t max_groups = 64; // deeper trees go to the run queue

    bool empty() const noexcept { return size_ == 0; }
    bool full() const noexcept { return size_ == max_groups; }
    void add(process_control* p, const process_control* spawner) noexcept {
        p->next_ready = nullptr;
        if (size_ > 0 && groups_[size_ - 1].spawner == spawner) {
            group& g = groups_[size_ - 1];
            g.tail->next_ready = p;
            g.tail = p;
            return;
        }
        groups_[size_++] = group{p, p, spawner};
    }
    process_control* take() noexcept {
        if (size_ == 0) return nullptr;
        group& g = groups_[size_ - 1];
        process_control* p = g.head;
        g.head = p->next_ready;
        if (!g.head) --size_;
        p->next_ready = nullptr;
        return p;
    }
    // The newest group to the run queue when `spawner` spawned it.
    void move_newest_of(const process_control* spawner, scheduling_algorithm& queue) noexcept {
        if (size_ == 0 || groups_[size_ - 1].spawner != spawner) return;
        --size_;
        move_group(groups_[size_], queue);
    }
    // Every one to the run queue, oldest group first.
    void move_all(scheduling_algorithm& queue) noexcept {
        for (std::size_t i = 0; i < size_; ++i)
            move_group(groups_[i], queue);
        size_ = 0;
    }

  private:
    struct group {
        process_control* head;
        process_control* tail;
        const process_control* spawner;
    };
    static void move_group(const group& g, scheduling_algorithm& queue) noexcept {
        for (process_control* p = g.head; p;) {
            process_control* next = p->next_ready;
            queue.push_local(p);
            p = next;
        }
    }
    group groups_[max_groups];
    std::size_t size_ = 0;
};

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
    // The newest goes to `next_up_`, the one it displaces to the run queue.
    void ready_here(process_control* p) noexcept {
        set_scheduler(p, this);
        prefetch_saved_frames(p);
        if (process_control* older = std::exchange(next_up_, p)) queue->push_local(older);
        if (sleepers_->load(std::memory_order_relaxed) > 0) share_work();
    }

    runtime_impl& rt;
    const unsigned index;
    execution_context ctx; // the thread's own stack while a process runs
    std::unique_ptr<scheduling_algorithm> queue;
    timer_wheel timers;
    timer_pool delivery_pool; // free send_after entries of this wheel (guarded by its lock)
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

    // Finishes the switch-out of `prev` (waiting, yielding or ended) once its stack is left:
    // keeps its context and lets it wait, queues it again, or releases it. Runs on whichever
    // stack was switched to.
    void complete_switch(process_control* prev, bctx::fcontext_t where) noexcept {
        prev->ctx.fctx = where;
        auto sp = static_cast<const char*>(where);
        if (sp < prev->deepest) prev->deepest = sp;
        if (prev->canary_guarded) check_canary(*prev);
        switch (prev->why) {
        case switch_reason::yield:
            queue->push_local(prev);
            slice_ended();
            break;
        case switch_reason::wait:
            wait_soft(prev);
            break;
        case switch_reason::exit: // it handed off as it ended (leave_for_good)
            finish(prev);
            break;
        case switch_reason::hibernate: // never handed off
            break;
        }
    }

    // Soft waiting. A process that waits is not parked at once (a locked instruction on its
    // inbox, and another for the sender that wakes it): it becomes a soft waiter of this
    // scheduler, on lists only this thread touches. A sender on this thread hands it a message
    // and the wake-up with plain loads and stores (deliver_soft). A sender on another thread
    // only queues its signal and raises `soft_signal_`; this scheduler then parks its soft
    // waiters for real (harden_waiters) at its next switch, which wakes those with signals.
    // It does so too before it looks for work elsewhere or sleeps, and, for a signal whose
    // sender looked just before the process became a soft waiter, it parks every process that
    // has waited softly for a whole `soft_period` of dispatches (two generations: young, old).
    // The newest soft waiter is kept apart from the arrays (`soft_newest_`): it is usually the
    // next one woken (two processes that talk), and then neither array is touched.
    void wait_soft(process_control* p) noexcept {
        if (soft_newest_) retire_newest();
        soft_newest_ = p;
        p->soft_generation = newest_generation;
        p->signalled_from.store(0, std::memory_order_relaxed);
        // Announced before the inbox is looked at: a sender that queued a signal and then missed
        // the announcement can only have done so within a few instructions of it (no fence).
        p->soft_on.store(this, std::memory_order_relaxed);
        if (p->inbox.load(std::memory_order_relaxed) != inbox_state::empty) [[unlikely]] {
            leave_soft(p);
            queue->push_local(p);
        }
    }
    // Moves the newest soft waiter to the young generation's array (parks it when the array
    // cannot grow).
    void retire_newest() noexcept {
        process_control* p = std::exchange(soft_newest_, nullptr);
        if (soft_[soft_young_].add(p)) [[likely]] {
            p->soft_generation = soft_young_;
        } else {
            p->soft_on.store(nullptr, std::memory_order_relaxed);
            park_or_queue(p);
        }
    }
    // Parks `p`, or queues it here when a signal came first. After a successful park another
    // thread may already run p: the caller must not touch it any more.
    void park_or_queue(process_control* p) noexcept {
        if (!p->park()) queue->push_local(p);
    }
    // Takes `p` off its soft-waiter list (it must be a soft waiter of this scheduler).
    void leave_soft(process_control* p) noexcept {
        p->soft_on.store(nullptr, std::memory_order_relaxed);
        if (p->soft_generation == newest_generation) {
            soft_newest_ = nullptr;
        } else {
            soft_[p->soft_generation].remove(p);
        }
    }
    // Makes a soft waiter of this scheduler runnable (this thread only).
    void wake_soft(process_control* p) noexcept {
        leave_soft(p);
        ready_here(p);
    }
    // Hands `e` to `p`, a soft waiter of this scheduler, and wakes it; false (e destroyed) when
    // `p` is no longer the process `serial` names. A message goes straight to the message list
    // when nothing is queued before it (so that it cannot overtake an earlier signal of its
    // sender), the rest through the inbox.
    bool deliver_soft(process_control* p, envelope* e, std::uint32_t serial) noexcept {
        if (p->serial.load(std::memory_order_relaxed) != serial) {
            e->destroy();
            return false;
        }
        if (e->kind() == signal_kind::message &&
            p->inbox.load(std::memory_order_relaxed) == inbox_state::empty) {
            p->messages.push_back(e);
        } else {
            p->push(e); // a soft waiter is alive: its inbox is open
        }
        wake_soft(p);
        return true;
    }
    // Hands message `e` to `p` when `p` is ready and held by this thread alone (the process
    // made ready last, or one in the private part of the run queue: it has not run since, and
    // no other thread can take it) and nothing is queued before it: straight to its message
    // list, as deliver_soft does. False when that does not hold.
    bool deliver_held(process_control* p, envelope* e, std::uint32_t serial) noexcept {
        if (!holds(p) || p->serial.load(std::memory_order_relaxed) != serial ||
            p->inbox.load(std::memory_order_relaxed) != inbox_state::empty)
            return false;
        p->messages.push_back(e);
        return true;
    }
    // Whether `p` is ready and held by this thread alone: the process made ready last, or one in
    // the private part of the run queue (it has not run since, and no other thread can take it).
    bool holds(const process_control* p) const noexcept {
        return p == next_up_ || p->held_on.load(std::memory_order_relaxed) == index + 1;
    }
    // A sender on another thread queued a signal for a process that waits softly here.
    void note_soft_signal() noexcept { soft_signal_.store(true, std::memory_order_release); }
    // Parks the soft waiters of generation `g`; those with signals queued become runnable.
    void harden(unsigned g) noexcept {
        soft_waiters& list = soft_[g];
        while (process_control* p = list.last()) {
            leave_soft(p);
            if (!p->park()) queue_signalled(p);
        }
    }
    void harden_waiters() noexcept {
        if (soft_newest_) retire_newest();
        harden(0);
        harden(1);
    }
    // The loop's part: parks soft waiters when another thread signalled one of them, and those
    // that have waited for a whole period.
    void tend_soft_waiters() noexcept {
        if (soft_signal_.load(std::memory_order_relaxed) &&
            soft_signal_.exchange(false, std::memory_order_acquire))
            harden_waiters();
        if (dispatches_ - soft_aged_at_ >= soft_period) {
            soft_aged_at_ = dispatches_;
            if (soft_newest_) retire_newest(); // it ages with the young generation
            soft_young_ ^= 1;                  // the young generation becomes the old one...
            harden(soft_young_); // ...once the old one is parked; its list is the new young one
        }
    }

    // The process a process that stops running (why: wait or yield) should switch straight to,
    // or nullptr when it should go back to the scheduler loop (nothing ready here, or timers
    // or I/O are due for a look). Marks it running.
    // Inline for the common case, a waiting process handing over to the one it woke (one
    // message each way), the rest in take_handoff_slow: out of line, the whole function's
    // register saves and restores cost 32 instructions per call round trip.
    process_control* take_handoff() noexcept {
        process_control* next = next_up_;
        if (dispatches_ + 1 >= loop_due_at_ || running->why == switch_reason::yield || !next ||
            (next->hibernated | next->fresh) || soft_signal_.load(std::memory_order_relaxed))
            [[unlikely]]
            return take_handoff_slow();
        next_up_ = nullptr;
        return dispatch_next(next, running->reductions);
    }

    // A process spawned on this thread by `spawner` (null: by no process). It runs when a
    // process waits or ends within its time slice and no process it woke goes first
    // (take_handoff), or when the run queue is empty; processes spawned later by others go
    // before it, those spawned earlier after it (spawn_groups). While another scheduler is
    // idle it goes to the run queue instead, where that one can take it.
    void ready_spawned(process_control* p, const process_control* spawner) noexcept {
        if (idle_->load(std::memory_order_relaxed) > 0 || spawned_.full()) [[unlikely]] {
            ready_here(p);
            return;
        }
        set_scheduler(p, this);
        spawned_.add(p, spawner);
    }
    // Puts the process made ready last back in the run queue's order.
    void requeue_next_up() noexcept {
        if (process_control* p = std::exchange(next_up_, nullptr)) queue->push_local(p);
    }
    // The process a time slice goes on with when the one that had it waits or ends: the one
    // it woke last, else the newest spawned one; nullptr when there is neither.
    process_control* take_held() noexcept {
        if (process_control* p = std::exchange(next_up_, nullptr)) return p;
        return spawned_.take();
    }
    // `p`'s time slice is over (it yields; before it is queued again). The processes it
    // spawned go to the run queue ahead of it, as in a plain FIFO, so that one that spawns
    // without end cannot outrun the processes it spawns. When other processes wait in the run
    // queue every spawned one goes there too; else the next slice goes to a spawned one. So
    // neither the run queue nor the spawned processes can hold up the other for longer than a
    // slice.
    void slice_over(const process_control* p) noexcept {
        if (spawned_.empty()) return;
        if (queue->ready_count() > 0) {
            spawned_.move_all(*queue);
            return;
        }
        spawned_.move_newest_of(p, *queue);
        spawned_turn_ = !spawned_.empty();
    }
    // The process that begins a new time slice (the one made ready last waits its turn).
    process_control* take_new_slice() noexcept {
        requeue_next_up();
        if (spawned_turn_) {
            spawned_turn_ = false;
            if (process_control* p = spawned_.take()) return p;
        }
        if (process_control* p = queue->pop()) return p;
        return spawned_.take();
    }
    // Adds the reductions `p` used since it was dispatched to its total (as it switches out).
    void count_slice(process_control& p) const noexcept {
        p.reductions_total += std::uint64_t(slice_start_ - p.reductions);
    }
    eh_state* thread_eh() const noexcept { return eh_globals_; }
    // Erlang's +P for a spawn on this thread. The live count is a sum over every scheduler, so
    // it is looked at only when this scheduler's allowance is spent (or void: a newer epoch):
    // a share of what was left small enough that all schedulers spending theirs at once stay
    // within the limit; close to the limit that is one spawn, and every spawn looks.
    bool may_spawn() noexcept {
        if (spawn_allowance_ > 0 &&
            spawn_epoch_ == rt_spawn_epoch_->load(std::memory_order_relaxed)) [[likely]] {
            --spawn_allowance_;
            return true;
        }
        return renew_spawn_allowance();
    }

    // Timers and I/O get a look every so many dispatches. Most dispatches are short (a process
    // that receives, sends and waits again: ~50 ns), so a look every 128 costs little and
    // still comes every few microseconds; one every 32 cost ring, pingpong and call 3-4 %
    // (the loop is entered through a switch of its own). A dispatch that ends a whole time
    // slice counts as `slice_weight` for them (slice_ended): a look then comes after at most
    // four slices of busy processes (it came after 32 before).
    static constexpr unsigned timer_check_interval = 128; // dispatches between timer checks
    static constexpr unsigned io_check_interval = 128;    // dispatches between I/O polls
    static constexpr unsigned slice_weight = 32;
    // A dispatch ended a whole time slice: for timers and I/O it counts as `slice_weight`.
    void slice_ended() noexcept {
        // The extra weight brings each due point closer, never before the next dispatch.
        const std::uint64_t soonest = dispatches_ + 1;
        auto sooner = [soonest](std::uint64_t due) {
            return due > soonest + (slice_weight - 1) ? due - (slice_weight - 1) : soonest;
        };
        timers_due_at_ = sooner(timers_due_at_);
        io_due_at_ = sooner(io_due_at_);
        loop_duties_seen();
    }
    static constexpr unsigned balance_interval = 256; // dispatches between load comparisons
    static constexpr unsigned soft_period = 1024;     // dispatches per soft-waiter generation

  private:
    // take_handoff's every other case, and the dispatch both end with.
    [[gnu::noinline]] process_control* take_handoff_slow() noexcept {
        // The loop's duties come first when they are due.
        if (dispatches_ + 1 >= loop_due_at_) return nullptr;
        // Another thread signalled a soft waiter: the loop parks them first.
        if (soft_signal_.load(std::memory_order_relaxed)) return nullptr;
        // The process just made ready goes next, in what is left of the time slice of the one
        // that now waits (so that two processes that keep waking each other share one slice
        // and leave the others their turn). A process whose slice is over goes behind all.
        process_control* next = nullptr;
        std::int32_t reductions = budget_;
        if (running->why != switch_reason::yield && (next = take_held())) {
            reductions = running->reductions;
        } else {
            if (running->why == switch_reason::yield) slice_over(running);
            next = take_new_slice();
            if (!next) return nullptr;
        }
        // A process that has not run yet gets its stack here; one coming out of hibernation
        // (or one no stack could be had for) needs the loop.
        if (next->hibernated | next->fresh) [[unlikely]] {
            if (next->hibernated || !start_fresh(*next, *this)) {
                resume_next_ = next;
                return nullptr;
            }
        }
        return dispatch_next(next, reductions);
    }
    process_control* dispatch_next(process_control* next, std::int32_t reductions) noexcept {
        ++dispatches_;
        quiescent.store(++slices_, std::memory_order_release); // a time slice ends here too
        running = next;
        set_scheduler(next, this);
        next->reductions = reductions;
        slice_start_ = reductions;
        return next;
    }
    void share_work() noexcept;
    bool renew_spawn_allowance() noexcept;
    void queue_signalled(process_control* p) noexcept;
    void loop();
    void run(process_control* p);
    void finish(process_control* p);
    void hibernate(process_control* p);
    process_control* find_work() noexcept;
    void fire_timers();
    void poll_io() noexcept;
    void loop_duties_seen() noexcept; // after timers_due_at_ or io_due_at_ changed
    void balance() noexcept;
    void sleep();

    eh_state* eh_globals_ = nullptr;   // this thread's C++ exception globals
    const std::atomic<int>* sleepers_; // the runtime's count of sleeping schedulers
    const std::atomic<int>* idle_;     // and of those looking for work or asleep
    const int budget_;                 // reductions per time slice
    std::mutex sleep_mutex_;
    std::condition_variable sleep_cv_;
    bool wake_pending_ = false;
    bool in_poll_ = false; // asleep in the I/O poller rather than on sleep_cv_
    std::vector<fired_timer> due_;
    // Dispatches (time slices begun, by the loop or by a handoff), and the counts at which
    // timers and I/O are due for a look: a handoff chain must not keep either waiting.
    std::uint64_t dispatches_ = 0;
    std::uint64_t timers_due_at_ = timer_check_interval; // the dispatch count they are due at
    std::uint64_t io_due_at_ = io_check_interval;
    std::uint64_t balanced_at_ = 0;
    std::uint64_t slices_ = 0;
    process_control* resume_next_ = nullptr; // popped by a handoff that could not take it
    // The process made ready last on this thread, run before the run queue's (take_handoff);
    // only this thread touches it (it is not stealable).
    process_control* next_up_ = nullptr;
    // Processes spawned here and not run yet (see spawn_groups); only this thread touches them
    // (not stealable while held here).
    spawn_groups spawned_;
    bool spawned_turn_ = false;       // the next slice goes to a spawned process (slice_over)
    std::size_t spawn_allowance_ = 0; // spawns before the live count is looked at again
    std::uint64_t spawn_epoch_ = 0;   // of the allowance: void once the runtime's moves on
    const std::atomic<std::uint64_t>* rt_spawn_epoch_;
    std::int32_t slice_start_ = 0; // the running process's reductions when it was dispatched
    // What is left of the time slice of the process that came back to the loop last, when it
    // waited or ended (find_work goes on with the process it would have handed off to); 0
    // when the loop begins a new slice.
    std::int32_t slice_reductions_ = 0;
    // The dispatch count at which timers or I/O are due for a look in the loop.
    std::uint64_t loop_due_at_ = 0;
    // Soft waiters (see wait_soft), in two generations: those that began waiting since the last
    // generation change (soft_[soft_young_]) and before it.
    soft_waiters soft_[2];
    process_control* soft_newest_ = nullptr;
    static constexpr std::uint8_t newest_generation = 2; // soft_generation of soft_newest_
    std::uint8_t soft_young_ = 0;
    std::uint64_t soft_aged_at_ = 0;
    alignas(64) std::atomic<bool> soft_signal_{false}; // written by other threads
    std::thread thread_;
};

// The scheduler the calling thread runs, or nullptr (out of line: see runtime-notes §4.2).
scheduler* current_scheduler() noexcept;

// After a signal was queued for `p` without waking it, by a thread other than the one of the
// scheduler `p` may wait softly on: tells that scheduler (see scheduler::wait_soft).
// `here`: the sender's scheduler, or none. If that is another scheduler of p's runtime, p runs
// there when the signal wakes it (see process_control::signalled_from).
inline void note_if_soft(process_control* p, scheduler* here) noexcept {
    scheduler* s = p->soft_on.load(std::memory_order_relaxed);
    if (!s) return;
    if (here && here != s && &here->rt == p->rt)
        p->signalled_from.store(std::uint16_t(here->index + 1), std::memory_order_relaxed);
    s->note_soft_signal();
}

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

// Wakes `p`, which waits for a receive timeout or readiness on scheduler `here` (softly or
// parked); on another thread only a parked one can be woken.
inline void wake_waiter(process_control* p, scheduler* here) noexcept {
    if (here && p->soft_on.load(std::memory_order_relaxed) == here) {
        here->wake_soft(p);
    } else if (p->unpark()) {
        make_ready(p, here);
    }
}

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
// The calling process's time slice is spent: yields, then handles the signals that came
// meanwhile (an exit signal throws). count_reduction() inlined: `if (--reductions <= 0)`.
void yield_spent(process_control& p);

// The first thing a process does on a fresh stack (first run, or after hibernation): takes
// over from whoever switched to it. Returns the scheduler it runs on.
scheduler* process_started(bctx::transfer_t t) noexcept;

// A process whose function has ended leaves its stack for good.
[[noreturn]] void leave_for_good(process_control& p) noexcept;

} // namespace erl::detail
