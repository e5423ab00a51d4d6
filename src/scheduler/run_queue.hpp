// The scheduling policy, kept apart from the scheduler loop (as Boost.Fiber keeps its
// algorithms apart): which ready process runs next on a scheduler thread. The default is a FIFO
// per scheduler with work stealing; a deterministic single-thread policy can replace it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "process/process_control.hpp"
#include "scheduler/spinlock.hpp"

namespace erl::detail {

class scheduling_algorithm {
  public:
    virtual ~scheduling_algorithm() = default;
    // `p` is ready to run; called on the owning scheduler thread.
    virtual void push_local(process_control* p) noexcept = 0;
    // `p` is ready to run; called from any other thread.
    virtual void push_remote(process_control* p) noexcept = 0;
    // The next process for the owning thread, or nullptr when it has none of its own.
    virtual process_control* pop() noexcept = 0;
    // A process another (idle) scheduler may take, or nullptr; never blocks.
    virtual process_control* steal() noexcept = 0;
    // How many processes wait here (approximate between threads).
    virtual std::size_t ready_count() const noexcept = 0;
    // How many of them another scheduler could steal.
    virtual std::size_t stealable() const noexcept = 0;
};

// FIFO per scheduler. Work the owner makes for itself goes to a private list that costs no atomic
// instruction; only while some scheduler is idle does new work go to the shared, stealable list
// (and work from other threads always does). The owner serves the shared list regularly too, so
// nothing waits there for ever.
class alignas(64) fifo_work_sharing final : public scheduling_algorithm {
  public:
    // `owner_mark`: what a process in the private list carries in held_on (0: nothing).
    fifo_work_sharing(const std::atomic<int>& idle_schedulers, std::uint8_t owner_mark) noexcept
        : idle_(idle_schedulers), owner_mark_(owner_mark) {}

    void push_local(process_control* p) noexcept override {
        if (local_.count > 0 && idle_.load(std::memory_order_relaxed) > 0) {
            push_shared(p);
            return;
        }
        local_.append(p);
        p->held_on.store(owner_mark_, std::memory_order_relaxed);
        local_size_.store(local_.count, std::memory_order_relaxed);
    }
    void push_remote(process_control* p) noexcept override { push_shared(p); }

    process_control* pop() noexcept override {
        // When both lists have work they take turns: the shared one holds the processes other
        // threads made ready, and the scheduler may pop only every few dozen switches (a
        // process it made ready itself often runs without a pop: scheduler::take_handoff).
        shared_turn_ = !shared_turn_;
        if (shared_turn_ || local_.count == 0) {
            if (process_control* p = take_shared()) return p;
        }
        process_control* p = local_.take();
        if (p) {
            p->held_on.store(0, std::memory_order_relaxed);
            local_size_.store(local_.count, std::memory_order_relaxed);
        }
        return p;
    }
    process_control* steal() noexcept override {
        if (shared_size_.load(std::memory_order_relaxed) == 0 || !lock_.try_lock()) return nullptr;
        process_control* p = shared_.take();
        shared_size_.store(shared_.count, std::memory_order_relaxed);
        lock_.unlock();
        return p;
    }
    std::size_t ready_count() const noexcept override {
        return local_size_.load(std::memory_order_relaxed) +
               shared_size_.load(std::memory_order_relaxed);
    }
    std::size_t stealable() const noexcept override {
        return shared_size_.load(std::memory_order_relaxed);
    }

  private:
    struct list {
        process_control* head = nullptr;
        process_control* tail = nullptr;
        std::size_t count = 0;
        void append(process_control* p) noexcept {
            p->next_ready = nullptr;
            if (tail) {
                tail->next_ready = p;
            } else {
                head = p;
            }
            tail = p;
            ++count;
        }
        process_control* take() noexcept {
            process_control* p = head;
            if (!p) return nullptr;
            head = p->next_ready;
            if (!head) tail = nullptr;
            p->next_ready = nullptr;
            --count;
            return p;
        }
    };
    void push_shared(process_control* p) noexcept {
        lock_.lock();
        shared_.append(p);
        shared_size_.store(shared_.count, std::memory_order_relaxed);
        lock_.unlock();
    }
    process_control* take_shared() noexcept {
        if (shared_size_.load(std::memory_order_relaxed) == 0) return nullptr;
        lock_.lock();
        process_control* p = shared_.take();
        shared_size_.store(shared_.count, std::memory_order_relaxed);
        lock_.unlock();
        return p;
    }

    const std::atomic<int>& idle_;
    const std::uint8_t owner_mark_;
    list local_; // owner thread only
    std::atomic<std::size_t> local_size_{0};
    bool shared_turn_ = false;
    spinlock lock_;
    list shared_; // guarded by lock_
    std::atomic<std::size_t> shared_size_{0};
};

} // namespace erl::detail
