// Each scheduler keeps freed message envelopes for reuse: sizes are few, and a message is almost
// always freed on a scheduler thread soon after another of its size was allocated there, so a
// per-thread free list by size class costs a handful of instructions where malloc and free cost
// well over a hundred (callgrind: glibc's free alone ~64 instructions per call, several hundred
// when a burst of messages defeats its own per-thread cache). A busy scheduler keeps up to
// `bytes_per_class` of blocks of each size (64 Ki blocks of 16 bytes, 4 Ki of 256); one that
// goes to sleep gives all but `kept_idle` back.
//
// Behind the schedulers' caches is one shared pool per size class (message_cache.cpp), under a
// mutex taken once per batch of `batch` blocks: a cache that runs dry takes a batch from it, and
// the pool cuts new batches from 64 KiB chunks (a burst of messages that are all alive at once,
// such as N spawned processes each sending one to their parent, costs a bump of a pointer per
// block instead of a malloc and a free); a full cache gives it a batch back; a block freed on a
// plain thread goes to it alone. Blocks of these classes are never returned to the heap: the
// memory of the largest burst stays in the pool for the next, as glibc would mostly keep it in
// its own free lists.
#pragma once

#include <cstddef>
#include <cstdint>

#include <erl/detail/envelope.hpp>

namespace erl::detail {

class message_cache {
  public:
    static constexpr std::size_t granule = message_granule;
    static constexpr std::size_t classes = message_classes; // blocks up to 256 bytes are cached
    static constexpr std::size_t bytes_per_class = std::size_t(1) << 20;
    static constexpr std::uint32_t kept_idle = 64;

    message_cache() = default;
    message_cache(const message_cache&) = delete;
    message_cache& operator=(const message_cache&) = delete;
    ~message_cache() { clear(); }

    // Class of a block of `size` bytes, or `classes` when blocks of that size are not cached.
    static constexpr std::size_t class_of(std::size_t size) noexcept {
        return message_class_of(size);
    }
    // The size every block of a cached class is allocated with (so any block of a class fits
    // every request of it). Chunks are aligned to cache lines and a block never straddles two:
    // 16 bytes (no message: an envelope's header is 24), then whole lines. A block freed on
    // another scheduler's thread joins that scheduler's cache, so two schedulers reuse blocks cut
    // side by side; were a line shared by blocks of both, every message would bounce it between
    // their cores (two pairs of processes on two schedulers: 63 instead of 49 ns per message
    // each; with 32-byte blocks for messages of up to 8 bytes, 4 runs in 14 of 4 pairs on two
    // schedulers took 41-46 instead of 23-28 ns per message).
    static constexpr std::size_t block_size(std::size_t cls) noexcept {
        std::size_t bytes = (cls + 1) * granule;
        return bytes <= 16 ? bytes : (bytes + 63) & ~std::size_t(63);
    }

    void* take(std::size_t cls) noexcept {
        bin& b = bins_[cls];
        free_block* f = b.head;
        if (!f) return nullptr;
        b.head = f->next;
        --b.count;
        return f;
    }
    static constexpr std::uint32_t limit(std::size_t cls) noexcept {
        return std::uint32_t(bytes_per_class / block_size(cls));
    }
    // False when the class is full (the caller then calls give_over).
    bool give(std::size_t cls, void* block) noexcept {
        bin& b = bins_[cls];
        if (b.count >= limit(cls)) return false;
        auto* f = static_cast<free_block*>(block);
        f->next = b.head;
        b.head = f;
        ++b.count;
        return true;
    }
    // Blocks moved between a cache and the shared pool at a time.
    static constexpr std::uint32_t batch = 64;
    // take() found the class empty: a batch from the shared pool (or cut from a new chunk);
    // returns one of its blocks and keeps the rest. Throws std::bad_alloc.
    void* refill(std::size_t cls);
    // give() found the class full: a batch goes to the shared pool, `block` stays.
    void give_over(std::size_t cls, void* block) noexcept;
    // A block of a cached class freed where there is no cache (a plain thread, a stopped
    // scheduler): it goes to the shared pool.
    static void give_to_pool(std::size_t cls, void* block) noexcept;
    // Gives blocks to the shared pool until each class keeps at most `keep`.
    void trim(std::uint32_t keep) noexcept;
    void clear() noexcept { trim(0); }

    struct free_block {
        free_block* next;
        free_block* next_batch; // in the shared pool: the next full batch (its first block)
    };
    static_assert(sizeof(free_block) <= granule);

  private:
    struct bin {
        free_block* head = nullptr;
        std::uint32_t count = 0;
    };
    bin bins_[classes];
};

} // namespace erl::detail
