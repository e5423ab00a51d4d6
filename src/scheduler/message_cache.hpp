// Each scheduler keeps freed message envelopes for reuse: sizes are few, and a message is almost
// always freed on a scheduler thread soon after another of its size was allocated there, so a
// per-thread free list by size class costs a handful of instructions where malloc and free cost
// well over a hundred (callgrind: glibc's free alone ~64 instructions per call, several hundred
// when a burst of messages defeats its own per-thread cache). A busy scheduler keeps up to
// `bytes_per_class` of blocks of each size (64 Ki blocks of 16 bytes, 4 Ki of 256); one that
// goes to sleep gives all but `kept_idle` back.
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
    // every request of it).
    static constexpr std::size_t block_size(std::size_t cls) noexcept {
        return (cls + 1) * granule;
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
    // False when the class is full (the caller frees the block).
    bool give(std::size_t cls, void* block) noexcept {
        bin& b = bins_[cls];
        if (b.count >= limit(cls)) return false;
        auto* f = static_cast<free_block*>(block);
        f->next = b.head;
        b.head = f;
        ++b.count;
        return true;
    }
    // Frees blocks until each class keeps at most `keep`.
    void trim(std::uint32_t keep) noexcept;
    void clear() noexcept { trim(0); }

  private:
    struct free_block {
        free_block* next;
    };
    struct bin {
        free_block* head = nullptr;
        std::uint32_t count = 0;
    };
    bin bins_[classes];
};

} // namespace erl::detail
