#pragma once

#include <atomic>

namespace erl::detail {

// A tiny test-and-test-and-set lock: the critical sections are a few pointer writes.
class spinlock {
  public:
    void lock() noexcept {
        for (;;) {
            if (!locked_.exchange(true, std::memory_order_acquire)) return;
            while (locked_.load(std::memory_order_relaxed))
                __builtin_ia32_pause();
        }
    }
    bool try_lock() noexcept {
        return !locked_.load(std::memory_order_relaxed) &&
               !locked_.exchange(true, std::memory_order_acquire);
    }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

  private:
    std::atomic<bool> locked_{false};
};

} // namespace erl::detail
