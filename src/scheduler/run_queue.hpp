// The scheduling policy, kept apart from the scheduler loop (as Boost.Fiber keeps its
// algorithms apart): which ready process runs next on a scheduler thread. The default is a FIFO
// per scheduler with work stealing; a deterministic single-thread policy can replace it.
#pragma once

#include <atomic>
#include <cstddef>

#include "process/process_control.hpp"

namespace erl::detail {

class scheduling_algorithm {
  public:
    virtual ~scheduling_algorithm() = default;
    // `p` is ready to run. Any thread may call this.
    virtual void push(process_control* p) noexcept = 0;
    // The next process for the owning thread, or nullptr when its own queue is empty.
    virtual process_control* pop() noexcept = 0;
    // A process another (idle) scheduler may take, or nullptr; never blocks.
    virtual process_control* steal() noexcept = 0;
    // How many processes wait in this queue (approximate between threads).
    virtual std::size_t ready_count() const noexcept = 0;
};

// A tiny test-and-test-and-set lock: the critical sections are a few pointer writes.
class spinlock {
  public:
    void lock() noexcept {
        for (;;) {
            if (!locked_.exchange(true, std::memory_order_acquire)) return;
            while (locked_.load(std::memory_order_relaxed)) __builtin_ia32_pause();
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

class fifo_work_stealing final : public scheduling_algorithm {
  public:
    void push(process_control* p) noexcept override {
        p->next_ready = nullptr;
        lock_.lock();
        if (tail_) {
            tail_->next_ready = p;
        } else {
            head_ = p;
        }
        tail_ = p;
        lock_.unlock();
        // seq_cst: pairs with a scheduler that announces it sleeps, then looks at the count.
        size_.fetch_add(1, std::memory_order_seq_cst);
    }
    process_control* pop() noexcept override {
        if (size_.load(std::memory_order_seq_cst) == 0) return nullptr;
        lock_.lock();
        process_control* p = take();
        lock_.unlock();
        return p;
    }
    process_control* steal() noexcept override {
        if (size_.load(std::memory_order_relaxed) == 0 || !lock_.try_lock()) return nullptr;
        process_control* p = take();
        lock_.unlock();
        return p;
    }
    std::size_t ready_count() const noexcept override {
        return size_.load(std::memory_order_seq_cst);
    }

  private:
    process_control* take() noexcept {
        process_control* p = head_;
        if (!p) return nullptr;
        head_ = p->next_ready;
        if (!head_) tail_ = nullptr;
        p->next_ready = nullptr;
        size_.fetch_sub(1, std::memory_order_relaxed);
        return p;
    }
    spinlock lock_;
    process_control* head_ = nullptr;
    process_control* tail_ = nullptr;
    std::atomic<std::size_t> size_{0};
};

} // namespace erl::detail
