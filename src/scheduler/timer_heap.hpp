// A scheduler's timers: a binary min-heap of intrusive entries that knows each entry's position,
// so cancelling is O(log n) and tens of thousands of pending timers stay cheap.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include <erl/detail/envelope.hpp>

#include "scheduler/spinlock.hpp"
#include <erl/pid.hpp>
#include <erl/ref.hpp>

namespace erl::detail {

struct process_control;
class timer_heap;

struct timer_entry {
    static constexpr std::size_t not_queued = std::size_t(-1);
    enum class action : std::uint8_t { wake, deliver };

    std::chrono::steady_clock::time_point deadline{};
    std::size_t heap_index = not_queued;
    timer_heap* heap = nullptr; // where it is (or was last) queued
    action what = action::wake;
    process_control* process = nullptr; // wake: the process waiting with a timeout
};

// A send_after timer: heap-allocated, owns its message (kept out of timer_entry, which every
// process control block embeds for its receive timeout).
struct delivery_timer : timer_entry {
    pid dest;
    envelope_ptr message;
    ref id;
};

class timer_heap {
  public:
    using clock = std::chrono::steady_clock;

    // Returns true when `e` became the earliest timer (a sleeping owner must wake earlier).
    bool insert(timer_entry* e);
    // True when `e` was queued here and is now removed.
    bool remove(timer_entry* e) noexcept;
    // Removes every timer due at `now`. Wake timers are handed to `wake` while the lock is held
    // (so their process cannot be cancelling them concurrently); deliver timers are appended to
    // `due` for the caller to act on after the lock is released.
    template <typename Wake>
    void expire(clock::time_point now, Wake&& wake, std::vector<timer_entry*>& due) {
        if (now.time_since_epoch().count() < next_.load(std::memory_order_acquire)) return;
        std::lock_guard lock(mutex_);
        while (!heap_.empty() && heap_.front()->deadline <= now) {
            timer_entry* e = heap_.front();
            remove_at(0);
            if (e->what == timer_entry::action::wake) {
                wake(e);
            } else {
                due.push_back(e);
            }
        }
        publish_next();
    }
    // The earliest deadline, or time_point::max() when there is none.
    clock::time_point next_deadline() const noexcept {
        return clock::time_point(clock::duration(next_.load(std::memory_order_acquire)));
    }
    std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

  private:
    void remove_at(std::size_t i) noexcept;
    void sift_up(std::size_t i) noexcept;
    void sift_down(std::size_t i) noexcept;
    void place(std::size_t i, timer_entry* e) noexcept {
        heap_[i] = e;
        e->heap_index = i;
    }
    void publish_next() noexcept {
        next_.store(heap_.empty() ? INT64_MAX : heap_.front()->deadline.time_since_epoch().count(),
                    std::memory_order_release);
        size_.store(heap_.size(), std::memory_order_relaxed);
    }

    spinlock mutex_; // held for O(log n) pointer moves only; timer insertion in a
                     // fire callback happens with it held (wake timers)
    std::vector<timer_entry*> heap_;
    std::atomic<std::int64_t> next_{INT64_MAX};
    std::atomic<std::size_t> size_{0};
};

} // namespace erl::detail
