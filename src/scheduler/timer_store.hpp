// Where send_after timers live: entries in chunks that are never freed while the runtime lives
// (type-stable, so a reference naming a timer long gone still leads to a valid entry, whose
// generation then tells it apart), numbered runtime-wide so that a timer reference can carry
// its entry's number, and handed out by per-scheduler free lists.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>

#include <erl/detail/envelope.hpp>
#include <erl/pid.hpp>

#include "scheduler/timer_wheel.hpp"

namespace erl::detail {

class scheduler;

// A send_after timer. Everything but `index` is guarded by its owning scheduler's wheel lock.
struct delivery_timer : timer_entry {
    pid dest;
    envelope_ptr message;
    // Counts the entry's uses: bumped when a timer ends, so a reference to it no longer matches.
    std::uint64_t generation = 0;
    // The timers aimed at one local process (newest first; see process_control::timers_to_me).
    delivery_timer* dest_next = nullptr;
    delivery_timer* dest_prev = nullptr;
    std::uint32_t index = 0; // in the runtime's timer_store
    bool listed = false;     // in its destination's list
};

// A scheduler's share: the free entries of its chunks. Guarded by the scheduler's wheel lock.
struct timer_pool {
    delivery_timer* free = nullptr; // linked through timer_entry::next
    // Entries in use, i.e. timers pending (runtime_statistics::pending_timers).
    std::atomic<std::int64_t> pending{0};
};

// The runtime's entries, by number: 2^26 at most (chunk, directory, top level of 2^10, 2^10
// and 2^6), found without a lock.
class timer_store {
  public:
    static constexpr unsigned chunk_bits = 10;
    static constexpr unsigned directory_bits = 10;
    static constexpr unsigned top_bits = 6;
    static constexpr unsigned index_bits = chunk_bits + directory_bits + top_bits;
    static constexpr std::size_t chunk_size = std::size_t(1) << chunk_bits;

    // The entries are constructed one by one as they are numbered and linked (grow): one pass
    // over a fresh chunk's memory instead of a zeroing pass and a linking one.
    struct chunk {
        explicit chunk(scheduler* s) noexcept : owner(s) {}
        chunk(const chunk&) = delete;
        chunk& operator=(const chunk&) = delete;
        ~chunk() {
            for (std::size_t i = 0; i < chunk_size; ++i)
                entry(i).~delivery_timer();
        }
        delivery_timer& entry(std::size_t i) noexcept {
            return std::launder(reinterpret_cast<delivery_timer*>(storage))[i];
        }
        scheduler* const owner; // whose wheel and free list its entries belong to
        alignas(delivery_timer) std::byte storage[chunk_size * sizeof(delivery_timer)];
    };

    timer_store() = default;
    timer_store(const timer_store&) = delete;
    timer_store& operator=(const timer_store&) = delete;
    ~timer_store();

    // The entry numbered `index` and the scheduler it belongs to, or nullptr when there is no
    // such entry (a number no timer ever had).
    delivery_timer* find(std::uint32_t index, scheduler*& owner) const noexcept {
        std::uint32_t id = index >> chunk_bits;
        if (id >= (std::uint32_t(1) << (directory_bits + top_bits))) return nullptr;
        auto* directory = top_[id >> directory_bits].load(std::memory_order_acquire);
        if (!directory) return nullptr;
        chunk* c = directory[id & ((1u << directory_bits) - 1)].load(std::memory_order_acquire);
        if (!c) return nullptr;
        owner = c->owner;
        return &c->entry(index & (chunk_size - 1));
    }
    // A new chunk for `owner`, its entries numbered and linked into `pool`'s free list.
    // Throws std::length_error when every number is taken, std::bad_alloc without memory.
    void grow(scheduler* owner, timer_pool& pool);
    // Calls fn(entry) for every entry of every chunk (the runtime is going away).
    template <typename Fn>
    void for_each(Fn&& fn) {
        std::uint32_t n = chunks_.load(std::memory_order_acquire);
        for (std::uint32_t id = 0; id < n; ++id) {
            auto* directory = top_[id >> directory_bits].load(std::memory_order_acquire);
            chunk* c =
                directory
                    ? directory[id & ((1u << directory_bits) - 1)].load(std::memory_order_acquire)
                    : nullptr;
            if (!c) continue;
            for (std::size_t i = 0; i < chunk_size; ++i)
                fn(c->entry(i));
        }
    }

  private:
    using directory = std::atomic<chunk*>[std::size_t(1) << directory_bits];
    std::atomic<std::atomic<chunk*>*> top_[std::size_t(1) << top_bits] = {};
    std::atomic<std::uint32_t> chunks_{0}; // numbers handed out (chunk ids)
};

} // namespace erl::detail
