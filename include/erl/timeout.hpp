// erl::timeout — how long a blocking call may wait: a duration or erl::infinity.
#pragma once

#include <chrono>

#include <erl/receive.hpp>

namespace erl {

class timeout {
  public:
    using clock = std::chrono::steady_clock;

    constexpr timeout(infinity_t) noexcept : infinite_(true) {} // NOLINT: implicit on purpose
    template <typename Rep, typename Period>
    constexpr timeout(std::chrono::duration<Rep, Period> d) noexcept // NOLINT: implicit
        : duration_(std::chrono::duration_cast<clock::duration>(d)) {
        if (duration_.count() < 0) duration_ = clock::duration::zero();
    }

    constexpr bool is_infinite() const noexcept { return infinite_; }
    constexpr clock::duration duration() const noexcept {
        return infinite_ ? clock::duration::max() : duration_;
    }
    // The moment this timeout ends when it starts now (time_point::max() for infinity).
    clock::time_point deadline() const noexcept {
        if (infinite_) return clock::time_point::max();
        auto now = clock::now();
        if (duration_ >= clock::time_point::max() - now) return clock::time_point::max();
        return now + duration_;
    }

  private:
    clock::duration duration_{};
    bool infinite_ = false;
};

} // namespace erl
