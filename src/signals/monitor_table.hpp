// A process's monitors, ref -> pid, in one flat array: open addressing with linear probing and
// deletion by backward shift (no tombstones, no node per monitor). (A gen call's monitor is not
// kept here but in the call records of signals.hpp.) Internal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include <erl/pid.hpp>
#include <erl/ref.hpp>

namespace erl::detail {

class monitor_table {
  public:
    struct entry {
        ref id;
        pid other; // the target (monitors held) or the watcher (monitors on the process)
        bool used = false;
    };

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    // False (and nothing changes) when `id` is already there.
    bool emplace(const ref& id, const pid& other) {
        if ((size_ + 1) * 4 > capacity() * 3) grow();
        std::size_t i = home(id);
        while (slots_[i].used) {
            if (slots_[i].id == id) return false;
            i = (i + 1) & mask_;
        }
        slots_[i] = entry{id, other, true};
        ++size_;
        return true;
    }

    // The entry for `id`, or nullptr.
    const entry* find(const ref& id) const noexcept {
        if (size_ == 0) return nullptr;
        for (std::size_t i = home(id);; i = (i + 1) & mask_) {
            if (!slots_[i].used) return nullptr;
            if (slots_[i].id == id) return &slots_[i];
        }
    }

    // Removes `id`; false when it was not there.
    bool erase(const ref& id) noexcept {
        const entry* e = find(id);
        if (!e) return false;
        erase_at(std::size_t(e - slots_.get()));
        // Give memory back after a burst (best effort: without memory, the table stays big).
        if (capacity() > 64 && size_ * 8 < capacity()) {
            try {
                rebuild(capacity() / 2);
            } catch (...) {
            }
        }
        return true;
    }

    void clear() noexcept {
        slots_.reset();
        mask_ = 0;
        size_ = 0;
    }

    // Calls f(id, other) for every entry (in no particular order).
    template <typename F>
    void for_each(F&& f) const {
        for (std::size_t i = 0; i < capacity(); ++i)
            if (slots_[i].used) f(slots_[i].id, slots_[i].other);
    }

  private:
    std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 0; }
    // Fibonacci hashing of the low three words (make_ref's counter is in the first two), the
    // creation and the node: the high bits of the product depend on all of them. Refs of other
    // nodes that differ only in words 4 and 5 share a home, which costs time, not correctness.
    std::size_t home(const ref& id) const noexcept {
        auto w = id.words();
        std::uint64_t k = (std::uint64_t(w.size() > 1 ? w[1] : 0) << 32 | w[0]) ^
                          (std::uint64_t(w.size() > 2 ? w[2] : 0) << 21) ^
                          (std::uint64_t(id.creation()) << 40) ^ id.node().index();
        return std::size_t((k * 0x9E3779B97F4A7C15ull) >> shift_);
    }

    void erase_at(std::size_t hole) noexcept {
        // Backward shift: move later members of the probe run into the hole while that keeps them
        // reachable from their home slot.
        for (std::size_t j = (hole + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
            std::size_t h = home(slots_[j].id);
            // Movable when its home is not in (hole, j] (cyclically).
            bool stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j);
            if (stays) continue;
            slots_[hole] = slots_[j];
            hole = j;
        }
        slots_[hole].used = false;
        --size_;
    }

    void grow() { rebuild(capacity() ? capacity() * 2 : 4); }

    void rebuild(std::size_t cap) {
        std::size_t old_cap = capacity();
        auto fresh = std::make_unique<entry[]>(cap);
        auto old = std::exchange(slots_, std::move(fresh));
        mask_ = cap - 1;
        shift_ = 64;
        for (std::size_t c = cap; c > 1; c >>= 1)
            --shift_;
        size_ = 0;
        for (std::size_t i = 0; i < old_cap; ++i) {
            if (!old[i].used) continue;
            std::size_t j = home(old[i].id);
            while (slots_[j].used)
                j = (j + 1) & mask_;
            slots_[j] = old[i];
            ++size_;
        }
    }

    std::unique_ptr<entry[]> slots_;
    std::size_t mask_ = 0;
    unsigned shift_ = 64;
    std::size_t size_ = 0;
};

} // namespace erl::detail
