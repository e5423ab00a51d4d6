// A statistics counter that is changed on the hot path and read rarely (runtime::statistics):
// one cell per scheduler thread, each changed only by code running on that thread, summed when
// read. A change is a relaxed load and store, not a locked read-modify-write: a gen_server call
// adds and removes a monitor on each side, and four locked instructions on one shared counter
// cost more than the monitor tables themselves. Internal.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace erl::detail {

class per_scheduler_counter {
  public:
    // Before any change: one cell per scheduler.
    void resize(std::size_t schedulers) {
        cells_ = std::make_unique<cell[]>(schedulers);
        size_ = schedulers;
    }
    // Only from scheduler `index`'s thread (the cells are atomic so that a reader on another
    // thread sees whole values).
    void add(unsigned index, std::int64_t delta) noexcept {
        auto& v = cells_[index].value;
        v.store(v.load(std::memory_order_relaxed) + delta, std::memory_order_release);
    }
    // A snapshot: changes made at the same time on other threads may or may not count. (Release
    // and acquire cost nothing more on x86: a reader that saw a change sees what came before it.)
    std::int64_t sum() const noexcept {
        std::int64_t s = 0;
        for (std::size_t i = 0; i < size_; ++i)
            s += cells_[i].value.load(std::memory_order_acquire);
        return s;
    }

  private:
    struct alignas(64) cell { // one cache line each: no false sharing between schedulers
        std::atomic<std::int64_t> value{0};
    };
    std::unique_ptr<cell[]> cells_;
    std::size_t size_ = 0;
};

} // namespace erl::detail
