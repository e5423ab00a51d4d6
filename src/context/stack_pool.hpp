// Process stacks: slots cut from large MAP_NORESERVE slabs (one VMA per slab whatever the
// number of processes), each with a guard below it where the kernel allows one for free.
// See runtime-notes.md §0 and §2 for the measurements behind every choice here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

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

    // A stack of at least `size` usable bytes (0: the default). Throws std::bad_alloc when the
    // address space is exhausted.
    stack_slot acquire(std::size_t size, stack_cache* cache);
    // `deepest` is the lowest stack address the process was seen at (its saved stack pointer at
    // switches): stacks that went deep give their pages back before reuse.
    void release(stack_slot slot, const char* deepest, stack_cache* cache) noexcept;
    void drain_cache(stack_cache& cache) noexcept;
    // The stack stays with its process but its contents are dead (hibernation): every page is
    // given back and the next use starts clean.
    static void forget_contents(stack_slot& slot) noexcept;

    // Where a faulting address lies: the usable slot it belongs to, if it hit a guard page.
    static bool find_guard_hit(const void* addr, const void** slot_low) noexcept;

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
    static void prepare(stack_slot& slot) noexcept;
    static void retire(stack_slot& slot) noexcept;

    std::size_t default_size_;
    std::mutex mutex_;
    std::vector<size_class> classes_;
    std::vector<std::pair<char*, std::size_t>> slabs_;
};

} // namespace erl::detail
