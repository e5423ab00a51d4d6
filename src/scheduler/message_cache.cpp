#include "scheduler/message_cache.hpp"

#include <erl/detail/envelope.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <new>
#include <utility>

#include "scheduler/scheduler.hpp"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 // Linux 5.14; older kernels refuse it and fault pages one by one
#endif

namespace erl::detail {

using free_block = message_cache::free_block;

// See message_cache.hpp. The fields other than `returned` belong to the cache that adopted the
// record, or to the shared pool's mutex while none has. Indexed by class.
struct block_owner {
    // Blocks freed elsewhere than in the adopting cache (a lock-free stack: chains pushed by any
    // thread, taken whole by the adopter).
    alignas(64) std::atomic<free_block*> returned[message_cache::owned_classes] = {};
    alignas(64) char* bump[message_cache::owned_classes] = {}; // uncut rest of the newest chunk
    char* bump_end[message_cache::owned_classes] = {};
    free_block* kept[message_cache::owned_classes] = {}; // the free list when the cache ended
    block_owner* next_unadopted = nullptr;
};

namespace {

constexpr std::size_t chunk_bytes = message_cache::chunk_bytes;
constexpr std::size_t region_bytes = std::size_t(4) << 20; // mapped at a time
static_assert(chunk_bytes - message_cache::chunk_header >=
              message_cache::batch * message_cache::block_size(message_classes - 1));

// The pooled blocks of one class: full batches (exactly `batch` blocks each,
// chained through their first blocks' next_batch), loose blocks, and what is left of the
// class's newest chunk.
struct shared_class {
    free_block* full = nullptr;
    free_block* loose = nullptr;
    char* bump = nullptr;
    char* bump_end = nullptr;
};

struct shared_pool {
    std::mutex mutex;
    shared_class classes[message_classes];
    char* region_next = nullptr; // chunks not handed out yet
    char* region_end = nullptr;
    block_owner* unadopted = nullptr; // owner records no cache has
};

// Never destroyed: a block may be freed while the program exits (after static destructors).
shared_pool& pool() {
    static shared_pool* p = new shared_pool;
    return *p;
}

// A new chunk, its pages not populated yet. Under the pool's mutex.
char* map_chunk(shared_pool& sp) {
    if (sp.region_next == sp.region_end) {
        const std::size_t bytes = region_bytes + chunk_bytes; // room to align
        void* m = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) throw std::bad_alloc();
        const auto start = reinterpret_cast<std::uintptr_t>(m);
        const std::uintptr_t aligned = (start + chunk_bytes - 1) & ~(chunk_bytes - 1);
        const std::uintptr_t end = aligned + region_bytes;
        if (aligned > start) ::munmap(m, aligned - start);
        if (start + bytes > end) ::munmap(reinterpret_cast<void*>(end), start + bytes - end);
        // Small pages: on these VMs a transparent huge page is usually memory the host must
        // back afresh, and clearing it cost more than the faults it saves (docs/benchmarks.md).
        ::madvise(reinterpret_cast<void*>(aligned), region_bytes, MADV_NOHUGEPAGE);
        sp.region_next = reinterpret_cast<char*>(aligned);
        sp.region_end = reinterpret_cast<char*>(end);
    }
    char* chunk = sp.region_next;
    sp.region_next += chunk_bytes;
    return chunk;
}

// Faults a new chunk's pages in at once (outside the pool's mutex: it takes ~20 us, and it
// leaves the contents alone, so others may already be using the chunk).
void populate(char* chunk) noexcept {
    if (chunk) ::madvise(chunk, chunk_bytes, MADV_POPULATE_WRITE);
}

// `bytes` from the class's newest chunk, or a new chunk (then `fresh_chunk`, to be populated).
// Under the pool's mutex.
char* cut(shared_pool& sp, shared_class& c, std::size_t bytes, char*& fresh_chunk) {
    if (std::size_t(c.bump_end - c.bump) < bytes) {
        char* chunk = map_chunk(sp);
        fresh_chunk = chunk;
        c.bump = chunk + message_cache::chunk_header;
        c.bump_end = chunk + chunk_bytes;
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

// Chains `n` blocks of `size` bytes from `at`; returns the first.
free_block* chain(char* at, std::uint32_t n, std::size_t size) noexcept {
    for (std::uint32_t i = 0; i + 1 < n; ++i)
        reinterpret_cast<free_block*>(at + i * size)->next =
            reinterpret_cast<free_block*>(at + (i + 1) * size);
    reinterpret_cast<free_block*>(at + (n - 1) * size)->next = nullptr;
    return reinterpret_cast<free_block*>(at);
}

// A chain of dense blocks (`first` to `last`) of one chunk word goes back to their owner, from
// any thread.
void return_to_owner(std::size_t cls, std::uintptr_t word, free_block* first,
                     free_block* last) noexcept {
    std::atomic<free_block*>& top = message_cache::owner_in(word)->returned[cls];
    last->next = top.load(std::memory_order_relaxed);
    while (!top.compare_exchange_weak(last->next, first, std::memory_order_release,
                                      std::memory_order_relaxed)) {
    }
}

} // namespace

void message_cache::adopt() {
    shared_pool& sp = pool();
    {
        std::lock_guard lock(sp.mutex);
        if ((owner_ = sp.unadopted)) {
            sp.unadopted = owner_->next_unadopted;
            owner_->next_unadopted = nullptr;
        } else {
            owner_ = new block_owner; // never freed (see block_owner)
        }
    }
    owned_word_ = reinterpret_cast<std::uintptr_t>(owner_) | dense_bit;
    for (std::size_t c = 0; c < owned_classes; ++c)
        bins_[c].head = std::exchange(owner_->kept[c], nullptr);
}

// Dense blocks, for a cache of a runtime with one scheduler: this cache's free list ran dry.
void* message_cache::refill_owned(std::size_t cls) {
    if (!owner_) {
        adopt();
        if (void* block = take(cls)) return block;
    }
    if (free_block* back = owner_->returned[cls].exchange(nullptr, std::memory_order_acquire)) {
        bins_[cls].head = back->next;
        return back;
    }
    // A batch cut from the owner's newest chunk of the class, or a new chunk.
    const std::size_t size = block_size(cls);
    char*& bump = owner_->bump[cls];
    std::size_t room = std::size_t(owner_->bump_end[cls] - bump) / size;
    if (room == 0) {
        char* chunk;
        {
            shared_pool& sp = pool();
            std::lock_guard lock(sp.mutex);
            chunk = map_chunk(sp);
        }
        populate(chunk);
        *reinterpret_cast<std::uintptr_t*>(chunk) = owned_word_;
        bump = chunk + chunk_header;
        owner_->bump_end[cls] = chunk + chunk_bytes;
        room = (chunk_bytes - chunk_header) / size;
    }
    const auto n = std::uint32_t(std::min<std::size_t>(room, batch));
    free_block* head = chain(bump, n, size);
    bump += n * size;
    bins_[cls].head = head->next;
    return head;
}

void* message_cache::refill(std::size_t cls) {
    if (owned(cls) && dense_) return refill_owned(cls);
    return refill_pooled(cls);
}

// A batch of blocks from the class's shared pool (or cut from a new chunk) into bins_[cls],
// which is empty.
void* message_cache::refill_pooled(std::size_t cls) {
    bin& b = bins_[cls];
    const std::size_t size = pooled_size(cls);
    free_block* head = nullptr;
    std::uint32_t n = 0;
    char* fresh = nullptr;
    char* fresh_chunk = nullptr;
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
            fresh = cut(sp, c, batch * size, fresh_chunk);
            n = batch;
        }
    }
    populate(fresh_chunk);
    if (fresh) head = chain(fresh, n, size); // cut for this cache alone: chained outside the lock
    b.head = head->next;
    b.count = n - 1;
    return head;
}

std::size_t message_cache::returned_count(const block_owner* owner, std::size_t cls) noexcept {
    std::size_t n = 0;
    for (free_block* f = owner->returned[cls].load(std::memory_order_acquire); f; f = f->next)
        ++n;
    return n;
}

void message_cache::send_home(std::size_t cls, void* block, std::uintptr_t word) noexcept {
    homeward& h = homeward_[cls][(word >> 8) % homeward_slots];
    if (h.word != word) {
        flush(cls, h);
        h.word = word;
    }
    auto* f = static_cast<free_block*>(block);
    f->next = h.head;
    h.head = f;
    if (!h.tail) h.tail = f;
    if (++h.count == batch) flush(cls, h);
}

void message_cache::flush(std::size_t cls, homeward& h) noexcept {
    if (h.head) return_to_owner(cls, h.word, h.head, h.tail);
    h = homeward{};
}

void message_cache::flush_all() noexcept {
    for (std::size_t cls = 0; cls < owned_classes; ++cls)
        for (homeward& h : homeward_[cls])
            flush(cls, h);
}

void message_cache::give_over(std::size_t cls, void* block) noexcept {
    if (owned(cls)) {
        const std::uintptr_t word = chunk_word(block);
        if (word != 0) {
            send_home(cls, block, word);
        } else {
            // A sparse block: a dense cache keeps it aside (it hands out dense ones).
            give_pooled(cls, dense_ ? sparse_aside_[cls] : bins_[cls], block);
        }
        return;
    }
    give_pooled(cls, bins_[cls], block);
}

// Keeps `block` in `b` of the class, first giving a batch to the shared pool when `b` is full.
void message_cache::give_pooled(std::size_t cls, bin& b, void* block) noexcept {
    if (b.count >= limit(cls)) {
        free_block* first = b.head;
        free_block* last = nth(first, batch);
        b.head = last->next;
        b.count -= batch;
        last->next = nullptr;
        shared_pool& sp = pool();
        std::lock_guard lock(sp.mutex);
        shared_class& c = sp.classes[cls];
        first->next_batch = c.full;
        c.full = first;
    }
    b.push(block);
    ++b.count;
}

void message_cache::give_to_pool(std::size_t cls, void* block) noexcept {
    if (owned(cls) && chunk_word(block) != 0) { // a dense block goes home
        auto* f = static_cast<free_block*>(block);
        return_to_owner(cls, chunk_word(block), f, f);
        return;
    }
    auto* f = static_cast<free_block*>(block);
    shared_pool& sp = pool();
    std::lock_guard lock(sp.mutex);
    shared_class& c = sp.classes[cls];
    f->next = c.loose;
    c.loose = f;
}

void message_cache::trim(std::uint32_t keep) noexcept {
    flush_all();
    for (std::size_t cls = 0; cls < classes; ++cls)
        trim_bin(cls, owned(cls) && dense_ ? sparse_aside_[cls] : bins_[cls], keep);
}

// Gives blocks of `b` (pooled ones of the class) to the shared pool until it keeps `keep`.
void message_cache::trim_bin(std::size_t cls, bin& b, std::uint32_t keep) noexcept {
    if (b.count <= keep) return;
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

void message_cache::clear() noexcept {
    trim(0);
    if (!owner_) return; // (then it has no dense blocks)
    // Dense blocks stay with the owner record, for the next cache that adopts it.
    shared_pool& sp = pool();
    std::lock_guard lock(sp.mutex);
    for (std::size_t cls = 0; cls < owned_classes; ++cls)
        owner_->kept[cls] = std::exchange(bins_[cls], bin{}).head;
    owned_word_ = no_match;
    owner_->next_unadopted = sp.unadopted;
    sp.unadopted = std::exchange(owner_, nullptr);
}

namespace {
// A block for a thread without a cache: from the pool, one at a time.
void* take_from_pool(std::size_t cls) {
    shared_pool& sp = pool();
    char* fresh_chunk = nullptr;
    void* block;
    {
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
        block = cut(sp, c, message_cache::pooled_size(cls), fresh_chunk);
    }
    populate(fresh_chunk);
    return block;
}
} // namespace

// Blocks of the cached classes come from chunks of their own and go back to a scheduler's cache,
// to their owner or to the pool, wherever they are freed (never to the heap). These functions never
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
