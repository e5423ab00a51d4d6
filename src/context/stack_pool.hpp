// Process stacks: slots cut from large MAP_NORESERVE slabs (one VMA per slab whatever the
// number of processes), each with a guard below it where the kernel allows one for free.
// See runtime-notes.md §0 and §2 for the measurements behind every choice here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "context/sanitizers.hpp"

namespace erl::detail {

enum class guard_kind : std::uint8_t {
    madvise,  // MADV_GUARD_INSTALL (Linux >= 6.13): no VMA cost
    mprotect, // PROT_NONE page: 1-2 VMAs each, so only a budget of them
    canary,   // no guard page: a magic word at the bottom, checked at each switch
};

struct stack_slot {
    char* low = nullptr;  // lowest usable byte (just above the guard)
    std::size_t size = 0; // usable bytes
    guard_kind guard = guard_kind::madvise;
    unsigned valgrind_id = 0;

    char* high() const noexcept { return low + size; }
    explicit operator bool() const noexcept { return low != nullptr; }
};

inline constexpr std::uint64_t stack_canary = 0xE71C0FFEEBADC0DEull;

// A per-scheduler LIFO of warm stacks of the default size: reuse costs no lock and no syscall.
struct stack_cache {
    std::vector<stack_slot> slots;
};

class stack_pool {
  public:
    explicit stack_pool(std::size_t default_size);
    ~stack_pool();
    stack_pool(const stack_pool&) = delete;
    stack_pool& operator=(const stack_pool&) = delete;

    std::size_t default_size() const noexcept { return default_size_; }

    // Tests: stacks cut from now on (in any pool of the program) get a canary instead of a
    // guard page, as where neither MADV_GUARD_INSTALL nor the mprotect budget can give one.
    static void use_canaries_for_new_stacks() noexcept;

    // A stack of at least `size` usable bytes (0: the default). Throws std::bad_alloc when the
    // address space is exhausted. The common case (the default size, a warm stack in the
    // scheduler's cache) is inline: a pop from the cache.
    stack_slot acquire(std::size_t size, stack_cache* cache) {
        if (size == 0 && cache && !cache->slots.empty()) [[likely]] {
            stack_slot s = cache->slots.back();
            cache->slots.pop_back();
            prepare(s);
            return s;
        }
        return acquire_slow(size, cache);
    }
    // `deepest` is the lowest stack address the process was seen at (its saved stack pointer at
    // switches): stacks that went deep give their pages back before reuse. Inline for the
    // common case: a default-size stack that stayed shallow goes back to the scheduler's cache.
    void release(stack_slot slot, const char* deepest, stack_cache* cache) noexcept {
        if (cache && slot.size == default_size_ && deepest >= slot.high() - keep_resident_bytes &&
            cache->slots.size() < cache->slots.capacity()) [[likely]] {
            // Room without reallocating (release_slow reserves `cache_limit`): cannot throw.
            retire(slot);
            cache->slots.push_back(slot);
            return;
        }
        release_slow(slot, deepest, cache);
    }
    void drain_cache(stack_cache& cache) noexcept;
    // The stack stays with its process but its contents are dead (hibernation): every page is
    // given back and the next use starts clean.
    static void forget_contents(stack_slot& slot) noexcept;

    // Where a faulting address lies: the usable slot it belongs to, if it hit a guard page.
    static bool find_guard_hit(const void* addr, const void** slot_low) noexcept;

    // Released stacks keep at most their top pages resident (a small process touches only these).
    static constexpr std::size_t keep_resident_bytes = 8 * 1024;
    // Warm stacks a scheduler keeps.
    static constexpr std::size_t cache_limit = 4096;

  private:
    struct size_class {
        std::size_t usable;     // usable bytes per slot
        std::size_t slot_bytes; // guard + usable
        char* bump = nullptr;   // next never-used slot of the newest slab
        char* bump_end = nullptr;
        std::vector<stack_slot> free; // released slots
    };
    size_class& class_for(std::size_t usable);
    stack_slot fresh_slot(size_class& c);
    stack_slot acquire_slow(std::size_t size, stack_cache* cache);
    void release_slow(stack_slot slot, const char* deepest, stack_cache* cache) noexcept;
    // A stack is handed out / taken back. Valgrind learns of a slot once, when it is cut
    // (fresh_slot), and forgets it when the pool goes: an idle registered stack is harmless, and
    // registering at every reuse cost a client request per spawn and per exit.
    static void prepare(stack_slot& s) noexcept {
        if (s.guard == guard_kind::canary) write_canary(s);
#if ERLCPP_ASAN
        __lsan_register_root_region(s.low, s.size);
#endif
    }
    static void retire(stack_slot& s) noexcept {
#if ERLCPP_ASAN
        // A dead process leaves redzone poison on its stack; the next one must not trip on it.
        ASAN_UNPOISON_MEMORY_REGION(s.low, s.size);
        __lsan_unregister_root_region(s.low, s.size);
#else
        (void)s;
#endif
    }
    static void write_canary(stack_slot& s) noexcept;

    std::size_t default_size_;
    std::mutex mutex_;
    std::vector<size_class> classes_;
    std::vector<std::pair<char*, std::size_t>> slabs_;
};

} // namespace erl::detail
