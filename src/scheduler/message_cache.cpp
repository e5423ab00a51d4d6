#include "scheduler/message_cache.hpp"

#include <erl/detail/envelope.hpp>

#include <new>

#include "scheduler/scheduler.hpp"

namespace erl::detail {

void message_cache::trim(std::uint32_t keep) noexcept {
    for (std::size_t cls = 0; cls < classes; ++cls) {
        while (bins_[cls].count > keep)
            ::operator delete(take(cls));
    }
}

// Blocks come from ::operator new in their class's size, so a block taken on one scheduler and
// freed on another (or on a plain thread, or after its scheduler stopped) is ordinary heap
// memory wherever it ends up.
void* allocate_message(std::size_t size) {
    // Under ASan every message is its own allocation, so that a use after free is caught.
    if constexpr (under_asan) return ::operator new(size);
    std::size_t cls = message_cache::class_of(size);
    if (cls >= message_cache::classes) return ::operator new(size);
    if (scheduler* s = current_scheduler()) {
        if (void* block = s->messages.take(cls)) return block;
    }
    return ::operator new(message_cache::block_size(cls));
}

void free_message(void* block, std::size_t size) noexcept {
    if constexpr (under_asan) {
        ::operator delete(block);
        return;
    }
    std::size_t cls = message_cache::class_of(size);
    if (cls >= message_cache::classes) {
        ::operator delete(block);
        return;
    }
    scheduler* s = current_scheduler();
    if (s && s->messages.give(cls, block)) return;
    ::operator delete(block);
}

} // namespace erl::detail
