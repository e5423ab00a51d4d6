#include "scheduler/message_cache.hpp"

#include <erl/detail/envelope.hpp>

#include <array>
#include <new>
#include <utility>

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
// memory wherever it ends up. These functions never suspend, so they read the thread's
// scheduler directly (ERLCPP_READS_THREAD).

template <std::size_t Class>
ERLCPP_READS_THREAD void* allocate_message_block(std::size_t size) {
    // Under ASan every message is its own allocation, so that a use after free is caught.
    if constexpr (under_asan) return ::operator new(size);
    if (scheduler* s = tl_scheduler) {
        if (void* block = s->messages.take(Class)) return block;
    }
    return ::operator new(message_cache::block_size(Class));
}

template <std::size_t Class>
ERLCPP_READS_THREAD void free_message_block(void* block) noexcept {
    if constexpr (!under_asan) {
        scheduler* s = tl_scheduler;
        if (s && s->messages.give(Class, block)) return;
    }
    ::operator delete(block);
}

// Every class's pair, instantiated here for the templates (erl/detail/envelope.hpp).
#define ERLCPP_MESSAGE_CLASS(c)                                                                    \
    template void* allocate_message_block<c>(std::size_t);                                         \
    template void free_message_block<c>(void*) noexcept;
static_assert(message_classes == 16);
ERLCPP_MESSAGE_CLASS(0)
ERLCPP_MESSAGE_CLASS(1)
ERLCPP_MESSAGE_CLASS(2)
ERLCPP_MESSAGE_CLASS(3)
ERLCPP_MESSAGE_CLASS(4)
ERLCPP_MESSAGE_CLASS(5)
ERLCPP_MESSAGE_CLASS(6)
ERLCPP_MESSAGE_CLASS(7)
ERLCPP_MESSAGE_CLASS(8)
ERLCPP_MESSAGE_CLASS(9)
ERLCPP_MESSAGE_CLASS(10)
ERLCPP_MESSAGE_CLASS(11)
ERLCPP_MESSAGE_CLASS(12)
ERLCPP_MESSAGE_CLASS(13)
ERLCPP_MESSAGE_CLASS(14)
ERLCPP_MESSAGE_CLASS(15)
#undef ERLCPP_MESSAGE_CLASS

namespace {
struct class_entry {
    void* (*allocate)(std::size_t);
    void (*free)(void*) noexcept;
};
template <std::size_t... C>
constexpr std::array<class_entry, message_classes> class_table(std::index_sequence<C...>) {
    return {class_entry{&allocate_message_block<C>, &free_message_block<C>}...};
}
constexpr auto by_class = class_table(std::make_index_sequence<message_classes>{});
} // namespace

// A size known only at run time goes to its class's pair.
void* allocate_message(std::size_t size) {
    std::size_t cls = message_class_of(size);
    if (cls >= message_classes) return ::operator new(size);
    return by_class[cls].allocate(size);
}

void free_message(void* block, std::size_t size) noexcept {
    std::size_t cls = message_class_of(size);
    if (cls >= message_classes) {
        ::operator delete(block);
        return;
    }
    by_class[cls].free(block);
}

} // namespace erl::detail
