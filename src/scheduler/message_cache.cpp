#include "scheduler/message_cache.hpp"

#include <erl/detail/envelope.hpp>

#include <algorithm>
#include <array>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "scheduler/scheduler.hpp"

namespace erl::detail {

namespace {

using free_block = message_cache::free_block;

constexpr std::size_t chunk_bytes = std::size_t(64) << 10;
static_assert(chunk_bytes >= message_cache::batch * message_cache::block_size(message_classes - 1));

// The shared pool of one size class: full batches (exactly `batch` blocks each, chained through
// their first blocks' next_batch), loose blocks, and what is left of the class's newest chunk.
struct shared_class {
    free_block* full = nullptr;
    free_block* loose = nullptr;
    char* bump = nullptr;
    char* bump_end = nullptr;
};

struct shared_pool {
    std::mutex mutex;
    shared_class classes[message_classes];
    std::vector<void*> chunks; // never freed; kept so that leak checkers see them reachable
};

// Never destroyed: a block may be freed while the program exits (after static destructors).
shared_pool& pool() {
    static shared_pool* p = new shared_pool;
    return *p;
}

// `bytes` from the class's newest chunk, or a new chunk. Under the pool's mutex.
char* cut(shared_pool& sp, shared_class& c, std::size_t bytes) {
    if (std::size_t(c.bump_end - c.bump) < bytes) {
        if (sp.chunks.size() == sp.chunks.capacity())
            sp.chunks.reserve(std::max<std::size_t>(64, 2 * sp.chunks.size()));
        auto* mem = static_cast<char*>(::operator new(chunk_bytes, std::align_val_t(64)));
        sp.chunks.push_back(mem);
        c.bump = mem;
        c.bump_end = mem + chunk_bytes;
    }
    char* at = c.bump;
    c.bump += bytes;
    return at;
}

// Takes the first `n` blocks (n >= 1, at most the chain's length) off a chain; returns the last.
free_block* nth(free_block* head, std::uint32_t n) noexcept {
    while (--n > 0)
        head = head->next;
    return head;
}

} // namespace

void* message_cache::refill(std::size_t cls) {
    bin& b = bins_[cls]; // empty: take() found nothing
    const std::size_t size = block_size(cls);
    free_block* head = nullptr;
    std::uint32_t n = 0;
    char* fresh = nullptr;
    {
        shared_pool& sp = pool();
        std::lock_guard lock(sp.mutex);
        shared_class& c = sp.classes[cls];
        if (c.full) {
            head = c.full;
            c.full = head->next_batch;
            n = batch;
        } else if (c.loose) {
            head = c.loose;
            free_block* last = head;
            n = 1;
            for (; n < batch && last->next; ++n)
                last = last->next;
            c.loose = last->next;
            last->next = nullptr;
        } else {
            fresh = cut(sp, c, batch * size);
            n = batch;
        }
    }
    if (fresh) {
        // Cut for this cache alone: chained outside the lock.
        for (std::uint32_t i = 0; i + 1 < n; ++i)
            reinterpret_cast<free_block*>(fresh + i * size)->next =
                reinterpret_cast<free_block*>(fresh + (i + 1) * size);
        reinterpret_cast<free_block*>(fresh + (n - 1) * size)->next = nullptr;
        head = reinterpret_cast<free_block*>(fresh);
    }
    b.head = head->next;
    b.count = n - 1;
    return head;
}

void message_cache::give_over(std::size_t cls, void* block) noexcept {
    bin& b = bins_[cls]; // full: at least `batch` blocks
    free_block* first = b.head;
    free_block* last = nth(first, batch);
    b.head = last->next;
    b.count -= batch;
    last->next = nullptr;
    {
        shared_pool& sp = pool();
        std::lock_guard lock(sp.mutex);
        shared_class& c = sp.classes[cls];
        first->next_batch = c.full;
        c.full = first;
    }
    auto* f = static_cast<free_block*>(block);
    f->next = b.head;
    b.head = f;
    ++b.count;
}

void message_cache::give_to_pool(std::size_t cls, void* block) noexcept {
    auto* f = static_cast<free_block*>(block);
    shared_pool& sp = pool();
    std::lock_guard lock(sp.mutex);
    shared_class& c = sp.classes[cls];
    f->next = c.loose;
    c.loose = f;
}

void message_cache::trim(std::uint32_t keep) noexcept {
    for (std::size_t cls = 0; cls < classes; ++cls) {
        bin& b = bins_[cls];
        if (b.count <= keep) continue;
        std::uint32_t extra = b.count - keep;
        free_block* first = b.head;
        free_block* last = nth(first, extra);
        b.head = last->next;
        b.count = keep;
        last->next = nullptr;
        // Whole batches go back as batches, the rest as loose blocks.
        shared_pool& sp = pool();
        std::lock_guard lock(sp.mutex);
        shared_class& c = sp.classes[cls];
        while (extra >= batch) {
            free_block* end = nth(first, batch);
            free_block* rest = end->next;
            end->next = nullptr;
            first->next_batch = c.full;
            c.full = first;
            first = rest;
            extra -= batch;
        }
        if (extra > 0) {
            last->next = c.loose;
            c.loose = first;
        }
    }
}

namespace {
// A block for a thread without a cache: from the pool, one at a time.
void* take_from_pool(std::size_t cls) {
    shared_pool& sp = pool();
    std::lock_guard lock(sp.mutex);
    shared_class& c = sp.classes[cls];
    if (free_block* f = c.loose) {
        c.loose = f->next;
        return f;
    }
    if (free_block* f = c.full) {
        // Break a batch: its other blocks become loose.
        c.full = f->next_batch;
        if (free_block* rest = f->next) {
            nth(rest, message_cache::batch - 1)->next = c.loose;
            c.loose = rest;
        }
        return f;
    }
    return cut(sp, c, message_cache::block_size(cls));
}
} // namespace

// Blocks of the cached classes come from the shared pool's chunks and go back to a scheduler's
// cache or to the pool, wherever they are freed (never to the heap). These functions never
// suspend, so they read the thread's scheduler directly (ERLCPP_READS_THREAD).

template <std::size_t Class>
ERLCPP_READS_THREAD void* allocate_message_block(std::size_t size) {
    // Under ASan every message is its own allocation, so that a use after free is caught.
    if constexpr (under_asan) return ::operator new(size);
    if (scheduler* s = tl_scheduler) {
        if (void* block = s->messages.take(Class)) return block;
        return s->messages.refill(Class);
    }
    return take_from_pool(Class);
}

template <std::size_t Class>
ERLCPP_READS_THREAD void free_message_block(void* block) noexcept {
    if constexpr (under_asan) {
        ::operator delete(block);
    } else if (scheduler* s = tl_scheduler) {
        if (!s->messages.give(Class, block)) s->messages.give_over(Class, block);
    } else {
        message_cache::give_to_pool(Class, block);
    }
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
