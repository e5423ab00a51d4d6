// Each scheduler keeps freed message envelopes for reuse: sizes are few, and a message is almost
// always freed on a scheduler thread soon after another of its size was allocated there, so a
// per-thread free list by size class costs a handful of instructions where malloc and free cost
// well over a hundred (callgrind: glibc's free alone ~64 instructions per call, several hundred
// when a burst of messages defeats its own per-thread cache).
//
// Two kinds of size class:
// - Blocks of whole cache lines (messages of more than 8 bytes). A busy scheduler keeps up to
//   `bytes_per_class` of each class (16 Ki blocks of 64 bytes, 4 Ki of 256); one that goes to
//   sleep gives all but `kept_idle` back. Behind the caches is one shared pool per class
//   (message_cache.cpp), under a mutex taken once per batch of `batch` blocks: a cache that runs
//   dry takes a batch from it, a full cache gives it a batch back, a block freed on a plain
//   thread goes to it alone.
// - Blocks smaller than a line (16 and 32 bytes: messages of up to 8 bytes, such as an int or
//   an empty struct). Two of them share a line, so they must not be in use on two threads at
//   once: two schedulers would bounce the line between their cores at every message (four
//   pairs of processes on two schedulers: 41-46 instead of 23-28 ns per message in 4 runs of
//   14; a sender on one scheduler and a receiver on the other: 170 instead of 110 ns). So they
//   are *dense* only in the caches of runtimes with one scheduler, where every process runs on
//   the cache's thread, and each dense block goes back to the cache that cut it: its chunk
//   belongs to a block_owner record that one cache adopts at a time; freed by that cache, the
//   block joins its free list; freed on any other thread (a plain thread, another runtime), it
//   goes onto the owner's `returned` stack (chains of up to `batch` blocks, one atomic exchange
//   each), which the cache takes whole when its free list runs dry. A dense cache keeps every
//   block it owns (no limit, no shared pool); a scheduler that ends leaves them with its owner
//   record for the next cache that adopts one. Everywhere else (runtimes with several
//   schedulers, plain threads) these classes take *sparse* blocks, one per line, pooled like the
//   other classes.
// Memory comes in chunks of 64 KiB (aligned to their size, so a block finds its chunk's header
// by masking its address), from mappings of 4 MiB whose pages are populated as a chunk is handed
// out: one madvise instead of sixteen page faults (a fault costs ~1.7 us on these VMs, a
// populated page ~1.3). Chunks are never unmapped: the memory of the largest burst stays for the
// next, as glibc would mostly keep it in its own free lists.
#pragma once

#include <cstddef>
#include <cstdint>

#include <erl/detail/envelope.hpp>

namespace erl::detail {

// The owner of chunks of blocks smaller than a line (see above). Never freed: a block may come
// back to it long after the cache that cut the block ended.
struct block_owner;

class message_cache {
  public:
    static constexpr std::size_t granule = message_granule;
    static constexpr std::size_t classes = message_classes; // blocks up to 256 bytes are cached
    static constexpr std::size_t bytes_per_class = std::size_t(1) << 20;
    static constexpr std::uint32_t kept_idle = 64;

    // `dense`: every process whose messages this cache serves runs on its thread (a runtime with
    // one scheduler), so blocks smaller than a line may share one.
    explicit message_cache(bool dense = false) noexcept
        : dense_(dense), owned_word_(dense ? no_match : 0) {}
    message_cache(const message_cache&) = delete;
    message_cache& operator=(const message_cache&) = delete;
    ~message_cache() { clear(); }

    // Class of a block of `size` bytes, or `classes` when blocks of that size are not cached.
    static constexpr std::size_t class_of(std::size_t size) noexcept {
        return message_class_of(size);
    }
    // The size every block of a cached class can hold (so any block of a class fits every
    // request of it): 16 and 32 bytes (cut one per line where they are not dense, see above),
    // then whole lines. Chunks are aligned to cache lines and a block never straddles two.
    static constexpr std::size_t block_size(std::size_t cls) noexcept {
        std::size_t bytes = (cls + 1) * granule;
        return bytes <= 32 ? bytes : (bytes + 63) & ~std::size_t(63);
    }
    // Blocks of the class are smaller than a line: dense ones go back to their chunk's owner.
    static constexpr bool owned(std::size_t cls) noexcept { return block_size(cls) < 64; }
    static constexpr std::size_t owned_classes = 2;
    // The room a block of the class takes where it is pooled (sparse).
    static constexpr std::size_t pooled_size(std::size_t cls) noexcept {
        return owned(cls) ? 64 : block_size(cls);
    }

    void* take(std::size_t cls) noexcept {
        bin& b = bins_[cls];
        free_block* f = b.head;
        if (!f) return nullptr;
        b.head = f->next;
        --b.count; // (not kept for dense blocks: wraps, unread)
        return f;
    }
    static constexpr std::uint32_t limit(std::size_t cls) noexcept {
        return std::uint32_t(bytes_per_class / pooled_size(cls));
    }
    // False when the block is not this cache's to keep: the class is full, or the block is
    // dense and not this cache's, or not of the kind it hands out (the caller then calls
    // give_over).
    bool give(std::size_t cls, void* block) noexcept {
        bin& b = bins_[cls];
        if (owned(cls)) {
            // Dense: this cache's own (no limit, no count); pooled: a pooled block (word 0), then
            // the limit.
            if (chunk_word(block) != owned_word_) return false;
            if (dense_) {
                b.push(block);
                return true;
            }
        }
        if (b.count >= limit(cls)) return false;
        b.push(block);
        ++b.count;
        return true;
    }
    // Blocks moved between a cache and the shared pool at a time.
    static constexpr std::uint32_t batch = 64;
    // take() found the class empty: for dense blocks, those returned to this cache's owner, else
    // a batch cut from its chunk; otherwise a batch from the shared pool (or cut from a new
    // chunk). Returns one of them and keeps the rest. Throws std::bad_alloc.
    void* refill(std::size_t cls);
    // give() refused the block: a dense one goes back to its owner, a sparse one in a dense
    // cache is kept aside; otherwise the class is full and a batch goes to the shared pool,
    // `block` stays.
    void give_over(std::size_t cls, void* block) noexcept;
    // A block of a cached class freed where there is no cache (a plain thread, a stopped
    // scheduler): a dense one goes to its owner, any other to the shared pool.
    static void give_to_pool(std::size_t cls, void* block) noexcept;
    // Gives pooled blocks to the shared pool until each class keeps at most `keep` (dense blocks
    // stay: no other cache may have them), and sends other owners' dense blocks home.
    void trim(std::uint32_t keep) noexcept;
    // Gives every block back, and the owner record up (with its dense blocks) for another cache
    // to adopt.
    void clear() noexcept;

    // The owner record of a dense block's chunk, null for a pooled block (tests).
    static const block_owner* owner_of(const void* block) noexcept {
        return owner_in(chunk_word(block));
    }
    const block_owner* owner() const noexcept { return owner_; }
    // How many dense blocks of the class wait on the owner's `returned` stack (tests).
    static std::size_t returned_count(const block_owner* owner, std::size_t cls) noexcept;

    // Memory is cut from chunks of this size, aligned to it. The first line holds the owner
    // record of a chunk of dense blocks, with dense_bit set (0 in a pooled chunk).
    static constexpr std::size_t chunk_bytes = std::size_t(64) << 10;
    static constexpr std::size_t chunk_header = 64;
    static constexpr std::uintptr_t dense_bit = 1;
    static std::uintptr_t chunk_word(const void* block) noexcept {
        return *reinterpret_cast<const std::uintptr_t*>(reinterpret_cast<std::uintptr_t>(block) &
                                                        ~(chunk_bytes - 1));
    }
    static block_owner* owner_in(std::uintptr_t word) noexcept {
        return reinterpret_cast<block_owner*>(word & ~dense_bit);
    }

    struct free_block {
        free_block* next;
        free_block* next_batch; // in the shared pool: the next full batch (its first block)
    };
    static_assert(sizeof(free_block) <= granule);

  private:
    struct bin {
        free_block* head = nullptr;
        std::uint32_t count = 0; // (not kept for dense blocks)
        void push(void* block) noexcept {
            auto* f = static_cast<free_block*>(block);
            f->next = head;
            head = f;
        }
    };
    // Dense blocks of other owners freed here, on their way home: sent as a chain of up to
    // `batch` (one atomic exchange per chain, not per block: a receiver on one scheduler of
    // messages from senders on another frees every one of them here), a few owners at a time.
    struct homeward {
        std::uintptr_t word = 0; // the chunk word of the blocks
        free_block* head = nullptr;
        free_block* tail = nullptr;
        std::uint32_t count = 0;
    };
    static constexpr std::size_t homeward_slots = 4;
    void send_home(std::size_t cls, void* block, std::uintptr_t word) noexcept;
    static void flush(std::size_t cls, homeward& h) noexcept;
    void flush_all() noexcept;
    void* refill_owned(std::size_t cls);
    void* refill_pooled(std::size_t cls);
    void give_pooled(std::size_t cls, bin& b, void* block) noexcept;
    void trim_bin(std::size_t cls, bin& b, std::uint32_t keep) noexcept;
    void adopt();

    bool dense_;
    bin bins_[classes];
    block_owner* owner_ = nullptr; // a dense cache's, adopted at its first refill of the classes
    // The chunk word of the blocks smaller than a line that give() keeps inline: a dense
    // cache's own (owner_ | dense_bit; `no_match` before it adopts an owner), else pooled ones
    // (0).
    static constexpr std::uintptr_t no_match = dense_bit; // (no chunk has this word)
    std::uintptr_t owned_word_;
    bin sparse_aside_[owned_classes]; // a dense cache's pooled blocks, freed here
    homeward homeward_[owned_classes][homeward_slots];
};
static_assert(message_cache::owned(message_cache::owned_classes - 1) &&
              !message_cache::owned(message_cache::owned_classes));

} // namespace erl::detail
