#include "scheduler/scheduler.hpp"

#include <boost/context/detail/fcontext.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <utility>

#include "context/overflow.hpp"
#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl::detail {
// initial-exec: one %fs-relative load, no __tls_get_addr call, also when built as PIC.
constinit thread_local scheduler* tl_scheduler __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {
constexpr unsigned idle_spins = 64;        // work searches before sleeping
constexpr unsigned idle_pause_rounds = 16; // of which the first spin on `pause` alone
} // namespace

// Opaque to the optimiser: a process may resume on another thread after any switch, so the
// address of this thread_local must be computed afresh at every call (runtime-notes §4.2).
__attribute__((noinline)) scheduler* current_scheduler() noexcept {
    scheduler** p = &tl_scheduler;
    asm volatile("" : "+r"(p));
    return *p;
}

scheduler::scheduler(runtime_impl& r, unsigned i)
    : rt(r), index(i),
      queue(std::make_unique<fifo_work_sharing>(r.idle, std::uint8_t(i < 255 ? i + 1 : 0))),
      messages(r.options.schedulers == 1), sleepers_(&r.sleepers), idle_(&r.idle),
      budget_(r.options.reductions_per_slice), rt_spawn_epoch_(&r.spawn_epoch) {}

scheduler::~scheduler() {
    join();
}

void scheduler::start() {
    thread_ = std::thread([this] { loop(); });
}

void scheduler::join() {
    if (thread_.joinable()) thread_.join();
}

void scheduler::push(process_control* p, bool from_owner) noexcept {
    set_scheduler(p, this);
    if (from_owner) {
        queue->push_local(p);
    } else {
        queue->push_remote(p);
    }
}

bool scheduler::renew_spawn_allowance() noexcept {
    std::size_t limit = rt.options.max_processes;
    std::size_t live = rt.live_count();
    if (live >= limit) return false;
    spawn_allowance_ = (limit - live) / (2 * rt.schedulers.size()); // this spawn's included
    // An allowance granted when there was more room must not outlive it: a spawner that moves
    // to another scheduler would find the one granted there long ago (one process spawning on
    // two schedulers went 63-440 past max_processes 5,000). When the room has halved since
    // the widest allowance now valid was granted, every allowance granted before is void.
    std::size_t widest = rt.widest_spawn_allowance.load(std::memory_order_relaxed);
    if (spawn_allowance_ * 2 < widest) {
        rt.widest_spawn_allowance.store(spawn_allowance_, std::memory_order_relaxed);
        spawn_epoch_ = rt.spawn_epoch.fetch_add(1, std::memory_order_relaxed) + 1;
    } else {
        if (spawn_allowance_ > widest)
            rt.widest_spawn_allowance.store(spawn_allowance_, std::memory_order_relaxed);
        spawn_epoch_ = rt.spawn_epoch.load(std::memory_order_relaxed);
    }
    return true;
}

// A soft waiter that a signal woke as it was hardened: to the scheduler of the sender on another
// thread, if one of this runtime said so (note_if_soft), else here.
void scheduler::queue_signalled(process_control* p) noexcept {
    unsigned from = p->signalled_from.exchange(0, std::memory_order_relaxed);
    if (from == 0 || from - 1 == index || from > rt.schedulers.size()) {
        queue->push_local(p);
        return;
    }
    scheduler& to = *rt.schedulers[from - 1];
    to.push(p, false);
    to.notify();
}

void scheduler::notify() noexcept {
    // Pairs with the fence in sleep(): either this sees `sleeping`, or the sleeper sees the work.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!sleeping.load(std::memory_order_relaxed)) return;
    std::lock_guard lock(sleep_mutex_);
    wake_pending_ = true;
    if (in_poll_) {
        rt.io.interrupt();
    } else {
        sleep_cv_.notify_one();
    }
}

void scheduler::share_work() noexcept {
    // Spread work to an idle scheduler (it steals). A missed wake-up here only delays that.
    if (queue->stealable() > 0) rt.wake_one_sleeper(this);
}

void make_ready(process_control* p, scheduler* here) noexcept {
    runtime_impl& rt = *p->rt;
    if (here && &here->rt == &rt) {
        here->ready_here(p);
        return;
    }
    // From another thread: queue it where it last ran and wake that scheduler.
    scheduler* target = p->sched;
    target->push(p, false);
    target->notify();
    // Spread work to an idle scheduler (it steals). A missed wake-up here only delays that.
    if (rt.sleepers.load(std::memory_order_relaxed) > 0 && target->queue->stealable() > 0)
        rt.wake_one_sleeper(target);
}

void make_ready(process_control* p) noexcept {
    make_ready(p, current_scheduler());
}

void scheduler::loop() {
    tl_scheduler = this;
    eh_globals_ = thread_eh_state();
#if ERLCPP_TSAN
    ctx.tsan_fiber = __tsan_get_current_fiber();
#endif
    alternate_signal_stack altstack;
    for (;;) {
        // A quiescent point: no process of ours is running (process_table.hpp).
        quiescent.store(++slices_, std::memory_order_release);
        ++dispatches_;
        if (dispatches_ >= timers_due_at_) fire_timers();
        if (dispatches_ >= io_due_at_) poll_io();
        if (dispatches_ - balanced_at_ >= balance_interval) balance();
        tend_soft_waiters();
        // Processes spawned here wait where only this thread can take them: while another
        // scheduler has nothing to do they go where it can.
        if (!spawned_.empty() && idle_->load(std::memory_order_relaxed) > 0) {
            spawned_.move_all(*queue);
            share_work();
        }
        if (process_control* p = find_work()) {
            run(p);
            continue;
        }
        fire_timers();
        poll_io();
        harden_waiters(); // before this thread looks elsewhere or sleeps
        if (process_control* p = find_work()) {
            run(p);
            continue;
        }
        if (rt.threads_exit.load(std::memory_order_acquire)) break;
        rt.note_if_all_ended();
        // Idle: say so (busy schedulers then share new work), look a little longer, then sleep.
        rt.idle.fetch_add(1, std::memory_order_relaxed);
        process_control* found = nullptr;
        for (unsigned i = 0; i < idle_spins && !found; ++i) {
            if (i < idle_pause_rounds) {
                for (int k = 0; k < 32; ++k)
                    __builtin_ia32_pause();
            } else {
                // Later rounds give the CPU away when another thread wants it: on an
                // oversubscribed machine a spinning scheduler would otherwise delay the very
                // peer (another node, a client) whose reply it waits for. On an idle machine
                // sched_yield returns at once and this is still a spin.
                sched_yield();
            }
            // Still a quiescent point (no process of ours runs): slots retired meanwhile need not
            // wait for this spin to end (process_table.hpp).
            quiescent.store(++slices_, std::memory_order_release);
            found = find_work();
            // Readiness that arrives while we spin must not wait for the spin to end.
            if (!found && i % 4 == 3 && rt.io.open_handles() > 0) {
                poll_io();
                found = find_work();
            }
        }
        if (!found) {
            sleep();
            found = find_work();
        }
        rt.idle.fetch_sub(1, std::memory_order_relaxed);
        if (found) run(found);
    }
    rt.stacks.drain_cache(stacks);
    rt.table.drain(slots);
    messages.clear();
    tl_scheduler = nullptr;
}

process_control* scheduler::find_work() noexcept {
    if (process_control* p = std::exchange(resume_next_, nullptr)) return p;
    // The process that came back to the loop last waited or ended within its time slice (the
    // loop had duties, see take_handoff): when no other process waits its turn in the run
    // queue, the slice goes on with the process it would have handed off to.
    if (slice_reductions_ > 0 && queue->ready_count() == 0) {
        if (process_control* p = take_held()) return p;
    }
    slice_reductions_ = 0;
    // The loop is where the run queue's order is kept: the process made ready last waits its
    // turn here (take_handoff lets it go first only within a time slice).
    if (process_control* p = take_new_slice()) return p;
    auto& all = rt.schedulers;
    for (std::size_t i = 1; i < all.size(); ++i) {
        scheduler& victim = *all[(index + i) % all.size()];
        if (process_control* p = victim.queue->steal()) return p;
    }
    return nullptr;
}

void scheduler::run(process_control* p) {
    running = p;
    set_scheduler(p, this);
    std::int32_t reductions = slice_reductions_ > 0 ? slice_reductions_ : budget_;
    slice_reductions_ = 0;
    p->reductions = reductions;
    slice_start_ = reductions;
    if (p->fresh && !start_fresh(*p, *this)) {
        fail_start(*p);
        running = nullptr;
        finish(p);
        return;
    }
    if (p->hibernated) {
        // Like the BEAM, a hibernated process handles signals (links, monitors, info requests)
        // without waking; only a message or a decided exit gives it a stack again.
        for (;;) {
            absorb_signals(*p);
            if (p->exiting || !p->messages.empty()) break;
            if (p->park()) {
                running = nullptr;
                return;
            }
        }
        p->hibernated = false;
        restart_context(*p);
    }
    before_switch(ctx, p->ctx);
    swap_eh_state(eh_globals_, ctx, p->ctx);
    handoff_from = nullptr;
    bctx::transfer_t t = jump_to(p->ctx.fctx, this);
    // Back on this thread's stack, from `p` or from a process p handed off to (directly or
    // through others): that one is in t.data. The process side swapped the exception state.
    after_switch(ctx, nullptr);
    running = nullptr;
    auto* back = static_cast<process_control*>(t.data);
    if (back->why == switch_reason::wait || back->why == switch_reason::exit)
        slice_reductions_ = back->reductions;
    switch (back->why) {
    case switch_reason::yield:
        slice_over(back); // see take_handoff
        complete_switch(back, t.fctx);
        break;
    case switch_reason::wait:
        complete_switch(back, t.fctx);
        break;
    case switch_reason::exit:
        finish(back);
        break;
    case switch_reason::hibernate:
        hibernate(back);
        break;
    }
}

void scheduler::hibernate(process_control* p) {
    // The stack's frames are gone: give every page back.
    rt.stacks.forget_contents(p->stack);
#if ERLCPP_TSAN
    __tsan_destroy_fiber(p->ctx.tsan_fiber);
    p->ctx.tsan_fiber = nullptr;
#endif
    // A message already in the mailbox wakes a hibernating process at once (as in Erlang).
    if (p->messages.empty()) {
        park_or_queue(p);
    } else {
        queue->push_local(p);
    }
}

void scheduler::finish(process_control* p) {
    if (p->stack) { // none: it never started
        rt.stacks.release(p->stack, p->deepest, &stacks);
        rt.stacks_held.add(index, -1);
    }
    p->stack = stack_slot{};
    p->canary_guarded = false;
#if ERLCPP_TSAN
    if (p->ctx.tsan_fiber) __tsan_destroy_fiber(p->ctx.tsan_fiber);
    p->ctx.tsan_fiber = nullptr;
#endif
    if (!p->exit_with.is_normal()) p->exit_with = exit_reason();
    bool system = p->system;
    p->system = false;
    // The process's own reference: process_control::unref(this) with its last_unref inlined,
    // since this scheduler is known to be of the process's runtime (spawn+exit path: saves
    // ~25 instructions per process).
    if (p->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) rt.table.release(p, &slots);
    if (system) rt.system_live.fetch_sub(1, std::memory_order_acq_rel);
    rt.live_on.add(index, -1);
}

void scheduler::loop_duties_seen() noexcept {
    loop_due_at_ = std::min(timers_due_at_, io_due_at_);
}

void scheduler::fire_timers() {
    timers_due_at_ = dispatches_ + timer_check_interval;
    loop_duties_seen();
    timers.expire(timer_wheel::clock::now(), [this](timer_entry* e) {
        // A receive timeout: its process waits on this scheduler, softly or parked.
        if (e->process) return wake_waiter(e->process, this);
        // A send_after timer: sent once the wheel is unlocked.
        due_.push_back(take_fired(rt, *this, *static_cast<delivery_timer*>(e)));
    });
    if (due_.empty()) return;
    for (fired_timer& fired : due_)
        send_signal(rt, fired.dest, std::move(fired.message));
    due_.clear();
}

void scheduler::balance() noexcept {
    // Stealing only helps a scheduler that runs dry. One that always has something to run
    // (a pair of processes keeping each other busy) never steals, so without this a 3:1 split
    // of four busy pairs on two schedulers would stay 3:1. Like the BEAM's periodic balancing:
    // a scheduler with at least two more ready processes than the least loaded one hands it the
    // oldest; processes that talk follow each other (make_ready queues a woken process where
    // its waker runs), so a pair moves as a pair.
    balanced_at_ = dispatches_;
    auto& all = rt.schedulers;
    std::size_t mine = queue->ready_count();
    if (all.size() < 2 || mine < 2) return;
    scheduler* lightest = nullptr;
    std::size_t least = mine;
    for (auto& s : all) {
        if (s.get() == this) continue;
        std::size_t n = s->queue->ready_count();
        if (n < least) {
            least = n;
            lightest = s.get();
        }
    }
    if (!lightest || mine < least + 2) return;
    if (process_control* p = queue->pop()) {
        lightest->push(p, false);
        lightest->notify();
    }
}

void scheduler::poll_io() noexcept {
    io_due_at_ = dispatches_ + io_check_interval;
    loop_duties_seen();
    // Sockets are rare next to messages: a runtime without any never makes a system call here.
    if (rt.io.open_handles() == 0 || !rt.io.try_take_token()) return;
    rt.io.poll(timer_wheel::clock::time_point{}); // the past: do not block
    rt.io.release_token();
}

void scheduler::sleep() {
    messages.trim(message_cache::kept_idle); // memory kept for a burst goes back while idle
    quiescent.store(quiescent.load(std::memory_order_relaxed) | offline_bit,
                    std::memory_order_release);
    std::unique_lock lock(sleep_mutex_);
    sleeping.store(true, std::memory_order_relaxed);
    rt.sleepers.fetch_add(1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // Look once more after announcing the sleep: a push that missed the announcement is seen.
    bool work = queue->ready_count() > 0;
    for (auto& s : rt.schedulers)
        work = work || s->queue->stealable() > 0;
    if (!work && !wake_pending_ && !rt.threads_exit.load(std::memory_order_acquire)) {
        auto deadline = timers.next_deadline();
        if (rt.io.open_handles() > 0 && rt.io.try_take_token()) {
            // Sleep in the poller: I/O readiness, a timer or notify() (through interrupt())
            // wakes this thread.
            in_poll_ = true;
            lock.unlock();
            int events = rt.io.poll(deadline);
            lock.lock();
            in_poll_ = false;
            rt.io.release_token();
            // Woken with processes to run and other schedulers asleep: one of them takes over
            // the watch, so that I/O is not left to this thread's occasional checks.
            if (events > 0 && rt.sleepers.load(std::memory_order_relaxed) > 1) {
                lock.unlock();
                rt.wake_one_sleeper(this);
                lock.lock();
            }
        } else if (deadline == timer_wheel::clock::time_point::max()) {
            sleep_cv_.wait(lock, [&] { return wake_pending_; });
        } else {
            sleep_cv_.wait_until(lock, deadline, [&] { return wake_pending_; });
        }
    }
    wake_pending_ = false;
    rt.sleepers.fetch_sub(1, std::memory_order_seq_cst);
    sleeping.store(false, std::memory_order_seq_cst);
    // Online again before this thread runs a process (the loop may run the one it finds next
    // without passing its top): a slot retired from now on waits for this scheduler too. A full
    // fence (seq_cst store): the process's lookups must not be done before it is seen.
    quiescent.store(++slices_, std::memory_order_seq_cst);
}

} // namespace erl::detail
