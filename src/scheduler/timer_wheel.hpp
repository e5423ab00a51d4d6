// A scheduler's timers: a hierarchical timing wheel of intrusive entries. Inserting and
// cancelling are O(1) whatever the number pending (tens of thousands cost what one does); an
// entry far in the future moves down a level at most once per level on its way to firing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "scheduler/spinlock.hpp"

namespace erl::detail {

struct process_control;
class timer_wheel;

// What a wheel queues: a receive timeout (embedded in its process's control block, `process`
// set) or a send_after timer (delivery_timer, `process` null).
struct timer_entry {
    timer_entry* next = nullptr;        // in its slot's list
    timer_entry** pprev = nullptr;      // what points to this entry; null while not queued
    std::uint64_t deadline = 0;         // steady_clock nanoseconds
    timer_wheel* wheel = nullptr;       // where it is (or was last) queued
    process_control* process = nullptr; // a receive timeout's process

    bool queued() const noexcept { return pprev != nullptr; }
};

// Time is counted in ticks of 2^16 ns (65.5 µs): an entry is due at the start of the first tick
// at or after its deadline, so it never fires early and at most a tick late (plus the time the
// scheduler takes to look). Entries due at the same tick fire in deadline order. Eight levels
// of 64 slots; level L's slots span 64^L ticks each, so the wheel covers 2^48 ticks, more than
// steady_clock's whole range. An entry goes to the lowest level whose span reaches its tick
// and drops to a lower one when its slot's turn comes (cascading), until it reaches level 0 at
// its own tick.
//
// The wheel is locked by its spinlock (lock()/unlock(): a BasicLockable); the `_locked`
// functions expect it held. Other threads insert (send_after to a process whose timers live
// here) and remove (cancel_timer); the owning scheduler fires.
class timer_wheel {
  public:
    using clock = std::chrono::steady_clock;
    static constexpr unsigned tick_shift = 16;
    static constexpr unsigned level_bits = 6;
    static constexpr unsigned slots_per_level = 1u << level_bits;
    static constexpr unsigned levels = 8;
    static constexpr std::uint64_t no_tick = ~std::uint64_t(0);

    timer_wheel() noexcept;
    timer_wheel(const timer_wheel&) = delete;
    timer_wheel& operator=(const timer_wheel&) = delete;

    // A time in the entries' form (all negative ones are the same: long past).
    static std::uint64_t nanoseconds(clock::time_point t) noexcept {
        auto ns = t.time_since_epoch().count();
        return ns <= 0 ? 0 : std::uint64_t(ns);
    }
    // The tick at whose start `deadline` has passed (rounded up), and the tick `now` is in.
    static std::uint64_t tick_due(std::uint64_t deadline) noexcept {
        return (deadline + (std::uint64_t(1) << tick_shift) - 1) >> tick_shift;
    }
    static std::uint64_t tick_due(clock::time_point deadline) noexcept {
        return tick_due(nanoseconds(deadline));
    }
    static std::uint64_t tick_of(clock::time_point now) noexcept {
        return nanoseconds(now) >> tick_shift;
    }

    void lock() noexcept { mutex_.lock(); }
    void unlock() noexcept { mutex_.unlock(); }

    // Queues `e` (not queued anywhere) to fire at `deadline`. True when this brought the
    // wheel's next event forward: a sleeping owner must be woken earlier.
    bool insert_locked(timer_entry* e, clock::time_point deadline) noexcept;
    // Takes `e`, queued here, off the wheel.
    void remove_locked(timer_entry* e) noexcept {
        *e->pprev = e->next;
        if (e->next) {
            e->next->pprev = e->pprev;
        } else if (auto slot = slot_of(e->pprev); slot < levels * slots_per_level) {
            // It was its slot's only entry.
            occupied_[slot / slots_per_level] &= ~(std::uint64_t(1) << (slot % slots_per_level));
        }
        e->pprev = nullptr;
        e->next = nullptr;
        if (--count_ == 0) publish(no_tick);
    }

    // The locking forms (receive timeouts).
    bool insert(timer_entry* e, clock::time_point deadline) noexcept {
        std::lock_guard lock(mutex_);
        return insert_locked(e, deadline);
    }
    // True when `e` was queued here and is now removed.
    bool remove(timer_entry* e) noexcept {
        std::lock_guard lock(mutex_);
        if (e->wheel != this || !e->queued()) return false;
        remove_locked(e);
        return true;
    }

    // Takes every entry due at `now` off the wheel and hands it to `due` (lock held, so that a
    // receive timeout's process cannot be removing it meanwhile, and a send_after timer can be
    // released before anyone else can look at it). An entry is off the wheel when `due` sees
    // it, which may reuse its links.
    template <typename Due>
    void expire(clock::time_point now, Due&& due) {
        // Below the next event: nothing to do, without the lock.
        if (now.time_since_epoch().count() < next_.load(std::memory_order_acquire)) return;
        std::lock_guard lock(mutex_);
        std::uint64_t now_tick = tick_of(now);
        while (timer_entry* e = advance(now_tick)) {
            do {
                timer_entry* next = e->next;
                e->pprev = nullptr;
                e->next = nullptr;
                --count_;
                due(e);
                e = next;
            } while (e);
        }
        publish(count_ ? next_event() : no_tick);
    }

    // No entry fires before this (time_point::max() when none is queued). A lower bound: the
    // next cascade, or the deadline of an entry cancelled since, may come first.
    clock::time_point next_deadline() const noexcept {
        return clock::time_point(clock::duration(next_.load(std::memory_order_acquire)));
    }

  private:
    static constexpr std::size_t slot_count = std::size_t(levels) * slots_per_level;

    // Advances the wheel towards `now_tick`, cascading on the way, up to the next tick whose
    // level-0 slot holds entries: returns them (detached, in deadline order, linked through
    // `next`), or nullptr when none is due by `now_tick`.
    timer_entry* advance(std::uint64_t now_tick) noexcept;
    // The earliest tick at or after cur_ at which a slot fires or cascades (count_ > 0).
    std::uint64_t next_event() const noexcept;
    // Links `e` into the slot of its tick (or of cur_, when that is later); returns the tick at
    // which that slot's turn comes.
    std::uint64_t place(timer_entry* e) noexcept;
    void cascade(unsigned level, std::uint64_t at) noexcept;
    // The slot `where` is, or slot_count when it is an entry's `next`.
    std::size_t slot_of(timer_entry** where) const noexcept {
        auto offset =
            reinterpret_cast<std::uintptr_t>(where) - reinterpret_cast<std::uintptr_t>(&slots_[0]);
        return offset < sizeof(slots_) ? offset / sizeof(timer_entry*) : slot_count;
    }
    void publish(std::uint64_t tick) noexcept {
        next_tick_ = tick;
        next_.store(tick >= (std::uint64_t(INT64_MAX) >> tick_shift)
                        ? INT64_MAX
                        : std::int64_t(tick << tick_shift),
                    std::memory_order_release);
    }

    spinlock mutex_; // held for O(1) link changes; a fire callback runs with it held
    std::atomic<std::int64_t> next_{INT64_MAX}; // next_tick_'s start in ns, read without the lock
    std::uint64_t cur_;                         // the first tick not yet processed
    std::uint64_t next_tick_ = no_tick;         // no entry fires before it
    std::size_t count_ = 0;
    std::uint64_t occupied_[levels] = {}; // a bit per non-empty slot
    timer_entry* slots_[slot_count] = {};
};

} // namespace erl::detail
