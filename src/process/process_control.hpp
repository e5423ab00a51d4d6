// The process control block. One per live process, kept in the runtime's process table; the
// memory is never returned while the runtime lives (type-stable), so a sender holding a stale
// pid can always look at `refs` and `serial` safely.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <erl/atom.hpp>
#include <erl/detail/envelope.hpp>
#include <erl/detail/message_list.hpp>
#include <erl/exit_reason.hpp>
#include <erl/pid.hpp>

#include "context/execution_context.hpp"
#include "context/stack_pool.hpp"
#include "scheduler/timer_wheel.hpp"

namespace erl::detail {

struct runtime_impl;
class scheduler;
struct signal_state;

// A function a process runs next (hibernate_with): it owns `closure`.
struct pending_continuation {
    void* closure;
    void (*run)(void*);
    void (*destroy)(void*) noexcept;
    pending_continuation(void* c, void (*r)(void*), void (*d)(void*) noexcept) noexcept
        : closure(c), run(r), destroy(d) {}
    pending_continuation(const pending_continuation&) = delete;
    pending_continuation& operator=(const pending_continuation&) = delete;
    ~pending_continuation() {
        if (closure) destroy(closure);
    }
};

enum class switch_reason : std::uint8_t { yield, wait, exit, hibernate };

// A spawned function small enough to wait for the process's first run in its control block:
// how to move it, and the closure itself.
struct inline_staged_closure {
    static constexpr std::size_t capacity = 32;
    static constexpr std::size_t alignment = 8;
    void (*construct)(void* where, void* source);
    alignas(alignment) unsigned char bytes[capacity];
};

// The signal queue: a closable multi-producer stack of envelopes whose word also says whether
// the owner is parked. Values: 0 empty; `parked` empty and the owner waits for a signal;
// `closed` the owner has ended; otherwise the newest envelope (the chain runs newest first).
// Whoever replaces `parked` must make the process runnable: exactly one party can.
namespace inbox_state {
inline constexpr std::uintptr_t empty = 0;
inline constexpr std::uintptr_t parked = 1;
inline constexpr std::uintptr_t closed = 2;
} // namespace inbox_state

enum class push_result { queued, woke, closed };

// Cache-line aligned: processes that run on different schedulers must not share a line (their
// inboxes and reductions are written at every message).
//
// The fields a message exchange touches come first and fill two lines: line 0 what a sender
// reads and writes and the flags a switch looks at, line 1 the saved context and the front of
// the message list. In a ring of 503 processes every block has left the core's first-level
// cache by the time its process runs again, so each line more a pass touches is a miss more
// (callgrind's cache model of a 48 KiB first level: 8.6 misses per pass with these fields
// spread over four lines, 6.5 with them in two; 47.3 -> 46 ns per pass). Everything after line 1 is
// for spawn, exit, links, names and timers.
struct alignas(64) process_control {
    // --- line 0: read and written by other threads, and the switch's flags ---
    std::atomic<std::uint32_t> refs{0};
    std::atomic<std::uint32_t> serial{0};
    std::atomic<std::uintptr_t> inbox{inbox_state::empty};
    // Messages queued in `inbox` since the owner last emptied it, counted by senders of this
    // runtime with a plain load and store: a hint (concurrent senders may lose counts) that,
    // with the message list's length, tells a sender how far behind the receiver is.
    std::atomic<std::uint32_t> arrivals{0};
    std::int32_t reductions = 0; // left in this time slice (the process's own)
    // Soft waiting (scheduler.hpp): the scheduler whose soft waiters include this process, or
    // null. Written by that scheduler's thread only; read by senders anywhere (a sender on that
    // thread wakes it; one elsewhere tells that scheduler a soft waiter has a signal).
    std::atomic<scheduler*> soft_on{nullptr};
    // Running on, or last ran on. Written through set_scheduler by the threads that queue and
    // run the process; read through scheduler_hint by senders on other threads (delivery.cpp).
    // Its other reads are plain: each comes after the write it reads (the run queues order
    // them).
    scheduler* sched = nullptr;
    std::uint64_t reductions_total = 0;
    // Where this process is among its scheduler's soft waiters (scheduler::wait_soft).
    std::uint32_t soft_index = 0;
    std::uint8_t soft_generation = 0;
    // The scheduler (index + 1; 0: none) whose thread alone holds this ready process, in the
    // private part of its run queue: a sender on that thread may append to its message list
    // directly (scheduler::deliver_held). Read only by senders on that thread.
    std::atomic<std::uint8_t> held_on{0};
    // The scheduler (index + 1; 0: none) of the process on another thread that last sent this
    // soft waiter a signal: when the signal wakes it, it runs there, as a parked process runs
    // where it is woken (scheduler::harden).
    std::atomic<std::uint16_t> signalled_from{0};
    switch_reason why = switch_reason::yield;
    bool in_receive_wait = false;
    bool exiting = false;    // an exit has been decided; the stack is unwinding
    bool hibernated = false; // stack given back; the next run starts `closure` afresh
    // Spawned and not yet run: no stack yet, `closure` is the staged function (start_fresh).
    bool fresh = false;
    bool trap_exit = false;
    bool terminating = false; // the function has ended; the process is being torn down
    // Its stack has a canary instead of a guard page (stack.guard): checked at every switch.
    bool canary_guarded = false;

    // --- line 1: the process's own, or its scheduler's while it is switched out ---
    execution_context ctx;
    const char* deepest = nullptr; // lowest saved stack pointer seen
    message_list messages;         // (its front part; the receive mark runs into line 2)

    // --- the rest ---
    runtime_impl* rt = nullptr;
    process_control* next_ready = nullptr; // run-queue link
    std::uint32_t number = 0;
    // send_after timers aimed at this process: the newest one's number + 1, 0 when none (a
    // list through the entries, guarded by their wheel's lock: scheduler/timers.cpp).
    std::atomic<std::uint32_t> timers_to_me{0};
    atom registered_name;                        // guarded by runtime_impl::names_mutex
    bool has_name = false;                       // guarded by runtime_impl::names_mutex
    bool system = false;                         // a runtime service (spawn_options::system)
    std::atomic<const char*> name_text{nullptr}; // registered name's text (overflow report)
    stack_slot stack;
    void* closure = nullptr;
    void* closure_block = nullptr; // the staging block `closure` lives in, when not on the stack
    void (*run)(void*) = nullptr;
    void (*destroy)(void*) noexcept = nullptr;
    // The continuation of a hibernate_with() in flight.
    std::unique_ptr<pending_continuation> next_continuation;
    // The receive timeout; before the first run, the spawned function instead when it is small
    // (spawn_from stages it here, sparing a staging block; start_fresh moves it to the stack
    // and makes the timer the live member again).
    union {
        timer_entry wait_timer{};
        inline_staged_closure staged_here;
    };
    exit_reason exit_with;                 // the decided or final reason
    std::unique_ptr<signal_state> signals; // links, monitors, name: made on first use

    pid self_pid() const noexcept;

    // Takes a reference unless the slot is free. Combined with a serial check this makes a pid
    // lookup safe against the slot being reused.
    bool try_ref() noexcept {
        std::uint32_t n = refs.load(std::memory_order_relaxed);
        while (n != 0) {
            if (refs.compare_exchange_weak(n, n + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed))
                return true;
        }
        return false;
    }
    void unref() noexcept;
    // Same, when the caller knows its scheduler (saves a thread-local lookup).
    void unref(scheduler* here) noexcept {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) last_unref(here);
    }
    void last_unref(scheduler* here) noexcept;

    push_result push(envelope* e) noexcept {
        std::uintptr_t old = inbox.load(std::memory_order_relaxed);
        for (;;) {
            if (old == inbox_state::closed) return push_result::closed;
            e->next = old == inbox_state::parked ? nullptr : reinterpret_cast<envelope*>(old);
            if (inbox.compare_exchange_weak(old, reinterpret_cast<std::uintptr_t>(e),
                                            std::memory_order_acq_rel, std::memory_order_relaxed))
                return old == inbox_state::parked ? push_result::woke : push_result::queued;
        }
    }
    // push() for a sender that holds no reference, only a pid: valid while the slot cannot be
    // reused under it (a scheduler thread, inside a time slice: process_table.hpp). The serial is
    // checked after reading the inbox, whose reset on reuse is a release store.
    // A message (signal_kind::message) to a parked owner skips the inbox: the owner's inbox is
    // empty then, and the sender that takes the wake-up (parked -> empty) owns the process until
    // it makes it runnable, so it appends the message straight to the message list; the owner
    // finds it there without emptying its inbox (one atomic instruction fewer per message). The
    // parking CAS and this one order the owner's last use of the list before the append; making
    // it runnable orders the append before its next.
    push_result push_checked(envelope* e, std::uint32_t expected_serial) noexcept {
        std::uintptr_t old = inbox.load(std::memory_order_acquire);
        for (;;) {
            if (old == inbox_state::closed ||
                serial.load(std::memory_order_relaxed) != expected_serial)
                return push_result::closed;
            bool direct = old == inbox_state::parked && e->kind() == signal_kind::message;
            std::uintptr_t now = direct ? inbox_state::empty : reinterpret_cast<std::uintptr_t>(e);
            if (!direct)
                e->next = old == inbox_state::parked ? nullptr : reinterpret_cast<envelope*>(old);
            if (inbox.compare_exchange_weak(old, now, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
                if (direct) messages.push_back(e);
                return old == inbox_state::parked ? push_result::woke : push_result::queued;
            }
        }
    }
    // The owner takes everything queued, oldest first.
    envelope* take_all() noexcept { return reverse(inbox.exchange(0, std::memory_order_acquire)); }
    // The owner ends: nothing more can be queued; returns what was, oldest first.
    envelope* close() noexcept {
        return reverse(inbox.exchange(inbox_state::closed, std::memory_order_seq_cst));
    }
    // Called by the scheduler after the process switched out to wait. False when a signal came
    // in meanwhile (the process must run again).
    bool park() noexcept {
        std::uintptr_t expected = inbox_state::empty;
        return inbox.compare_exchange_strong(expected, inbox_state::parked,
                                             std::memory_order_acq_rel);
    }
    // A timer or the runtime wakes a parked process; true when this call did (and so must make
    // it runnable).
    bool unpark() noexcept {
        std::uintptr_t expected = inbox_state::parked;
        return inbox.compare_exchange_strong(expected, inbox_state::empty,
                                             std::memory_order_acq_rel);
    }

  private:
    static envelope* reverse(std::uintptr_t word) noexcept {
        if (word <= inbox_state::closed) return nullptr;
        envelope* e = reinterpret_cast<envelope*>(word);
        envelope* prev = nullptr;
        while (e) {
            envelope* next = e->next;
            e->next = prev;
            prev = e;
            e = next;
        }
        return prev;
    }
};
static_assert(sizeof(inline_staged_closure) <= sizeof(timer_entry),
              "a function staged in the control block shares the receive timer's bytes");

// `p` is queued on, or runs on, `s`.
inline void set_scheduler(process_control* p, scheduler* s) noexcept {
    std::atomic_ref<scheduler*>(p->sched).store(s, std::memory_order_relaxed);
}
// Where `p` runs or last ran, read from any thread: a hint, which may be out of date at once.
inline scheduler* scheduler_hint(process_control* p) noexcept {
    return std::atomic_ref<scheduler*>(p->sched).load(std::memory_order_relaxed);
}

// Brings a control block towards the core's caches ahead of its use: the block the next spawn
// takes has waited out its grace (process_table.hpp) since its process ended and has often left
// them (spawn + exit: 131-139 -> 128-132 ns per process; prefetching the next process a run queue
// or a spawn group gives out as well made no difference to spawn, ring or skynet).
inline void prefetch_control_block(const process_control* p) noexcept {
    const char* b = reinterpret_cast<const char*>(p);
    for (std::size_t line = 0; line < sizeof(process_control); line += 64)
        __builtin_prefetch(b + line, 1);
}

// Brings the top of a waiting process's stack towards the core's caches when it is made ready:
// it usually runs next, and its first instructions reload the registers its switch saved there
// and return through the frames above them. Among many processes (a ring of 503) those lines
// have left the first-level cache; fetched while the waker finishes its own turn they are there
// when the switch reaches them (callgrind's cache model: 4 of 6.5 misses per pass are these
// lines). Prefetches never fault: a process without a stack yet (fctx null) costs nothing more.
inline void prefetch_saved_frames(const process_control* p) noexcept {
    const char* sp = static_cast<const char*>(p->ctx.fctx);
    __builtin_prefetch(sp);
    __builtin_prefetch(sp + 64);
    __builtin_prefetch(sp + 128);
    __builtin_prefetch(sp + 192);
}

} // namespace erl::detail
