#include "context/stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>

#include "context/sanitizers.hpp"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 // Linux 6.13; older kernels answer EINVAL
#endif

namespace erl::detail {
namespace {

constexpr std::size_t page = 4096;
constexpr std::size_t guard_bytes = page;
constexpr std::size_t slab_target_bytes = std::size_t(64) << 20;

std::size_t round_up(std::size_t n, std::size_t to) {
    return (n + to - 1) / to * to;
}

// Slabs, for the SIGSEGV handler: fixed storage, published with release stores, read with
// plain arithmetic (async-signal-safe).
struct slab_record {
    std::atomic<std::uintptr_t> base{0};
    std::atomic<std::uintptr_t> end{0};
    std::atomic<std::uintptr_t> slot_bytes{0};
};
constexpr std::size_t max_slab_records = 1 << 16;
slab_record slab_records[max_slab_records];
std::atomic<std::size_t> slab_record_count{0};

void publish_slab(char* base, std::size_t bytes, std::size_t slot_bytes) {
    std::size_t i = slab_record_count.load(std::memory_order_relaxed);
    // Reuse an emptied record (a runtime that ended) before growing.
    for (std::size_t j = 0; j < i; ++j) {
        if (slab_records[j].base.load(std::memory_order_relaxed) == 0) {
            i = j;
            break;
        }
    }
    if (i >= max_slab_records) return; // overflow still faults; it just is not named
    slab_records[i].slot_bytes.store(slot_bytes, std::memory_order_relaxed);
    slab_records[i].end.store(std::uintptr_t(base + bytes), std::memory_order_relaxed);
    slab_records[i].base.store(std::uintptr_t(base), std::memory_order_release);
    if (i == slab_record_count.load(std::memory_order_relaxed))
        slab_record_count.store(i + 1, std::memory_order_release);
}

void unpublish_slab(char* base) {
    std::size_t n = slab_record_count.load(std::memory_order_acquire);
    for (std::size_t j = 0; j < n; ++j)
        if (slab_records[j].base.load(std::memory_order_relaxed) == std::uintptr_t(base))
            slab_records[j].base.store(0, std::memory_order_release);
}

std::mutex slab_publish_mutex;

// mprotect guards cost VMAs; keep them to a quarter of vm.max_map_count, program-wide.
std::atomic<long> mprotect_budget{-1};
long read_mprotect_budget() {
    long limit = 65530;
    std::ifstream f("/proc/sys/vm/max_map_count");
    if (f) f >> limit;
    return limit / 4;
}
std::atomic<bool> madvise_guard_works{true};

} // namespace

stack_pool::stack_pool(std::size_t default_size) : default_size_(round_up(default_size, page)) {
    long expected = -1;
    mprotect_budget.compare_exchange_strong(expected, read_mprotect_budget());
}

stack_pool::~stack_pool() {
    for (auto& c : classes_) {
        for (auto& s : c.free) {
            if (s.guard == guard_kind::mprotect) mprotect_budget.fetch_add(1);
#if ERLCPP_VALGRIND
            VALGRIND_STACK_DEREGISTER(s.valgrind_id);
#endif
        }
    }
    std::lock_guard lock(slab_publish_mutex);
    for (auto [base, bytes] : slabs_) {
        unpublish_slab(base);
        ::munmap(base, bytes);
    }
}

stack_pool::size_class& stack_pool::class_for(std::size_t usable) {
    for (auto& c : classes_)
        if (c.usable == usable) return c;
    classes_.push_back(size_class{usable, usable + guard_bytes, nullptr, nullptr, {}});
    return classes_.back();
}

stack_slot stack_pool::fresh_slot(size_class& c) {
    if (c.bump == c.bump_end) {
        std::size_t slots = std::max<std::size_t>(16, slab_target_bytes / c.slot_bytes);
        std::size_t bytes = slots * c.slot_bytes;
        void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) throw std::bad_alloc();
        // Mandatory: with transparent huge pages one touched byte costs 2 MiB, not 4 KiB.
        ::madvise(mem, bytes, MADV_NOHUGEPAGE);
        c.bump = static_cast<char*>(mem);
        c.bump_end = c.bump + bytes;
        slabs_.emplace_back(c.bump, bytes);
        std::lock_guard lock(slab_publish_mutex);
        publish_slab(c.bump, bytes, c.slot_bytes);
    }
    char* slot_base = c.bump;
    c.bump += c.slot_bytes;
    stack_slot s;
    s.low = slot_base + guard_bytes;
    s.size = c.usable;
    s.guard = guard_kind::canary;
#if ERLCPP_VALGRIND
    // Registered for the slot's life (the pool's): see prepare().
    s.valgrind_id = VALGRIND_STACK_REGISTER(s.low, s.low + s.size);
#endif
    if (madvise_guard_works.load(std::memory_order_relaxed)) {
        if (::madvise(slot_base, guard_bytes, MADV_GUARD_INSTALL) == 0) {
            s.guard = guard_kind::madvise;
        } else if (errno == EINVAL) {
            madvise_guard_works.store(false, std::memory_order_relaxed);
        }
    }
    if (s.guard == guard_kind::canary && mprotect_budget.fetch_sub(1) > 0) {
        if (::mprotect(slot_base, guard_bytes, PROT_NONE) == 0) {
            s.guard = guard_kind::mprotect;
        } else {
            mprotect_budget.fetch_add(1);
        }
    } else if (s.guard == guard_kind::canary) {
        mprotect_budget.fetch_add(1);
    }
    return s;
}

void stack_pool::use_canaries_for_new_stacks() noexcept {
    madvise_guard_works.store(false, std::memory_order_relaxed);
    mprotect_budget.store(0);
}

void stack_pool::write_canary(stack_slot& s) noexcept {
    std::memcpy(s.low, &stack_canary, sizeof stack_canary);
}

stack_slot stack_pool::acquire_slow(std::size_t size, stack_cache* cache) {
    std::size_t usable = size == 0 ? default_size_ : round_up(std::max(size, 2 * page), page);
    stack_slot s;
    if (cache && usable == default_size_ && !cache->slots.empty()) {
        s = cache->slots.back();
        cache->slots.pop_back();
    } else {
        std::lock_guard lock(mutex_);
        size_class& c = class_for(usable);
        if (!c.free.empty()) {
            s = c.free.back();
            c.free.pop_back();
        } else {
            s = fresh_slot(c);
        }
    }
    prepare(s);
    return s;
}

void stack_pool::release_slow(stack_slot s, const char* deepest, stack_cache* cache) noexcept {
    retire(s);
    // Give back the pages below the top that the process was seen to touch: a stack keeps at
    // most `keep_resident_bytes` resident between owners, and the common small process (which
    // never left its top pages) costs no system call at all.
    const char* keep_from = s.high() - keep_resident_bytes;
    if (deepest && deepest < keep_from) {
        auto lo = reinterpret_cast<std::uintptr_t>(deepest) & ~std::uintptr_t(page - 1);
        auto from = std::max(lo, reinterpret_cast<std::uintptr_t>(s.low));
        ::madvise(reinterpret_cast<void*>(from), std::uintptr_t(keep_from) - from, MADV_DONTNEED);
        if (s.guard == guard_kind::canary) std::memcpy(s.low, &stack_canary, sizeof stack_canary);
    }
    if (cache && s.size == default_size_ && cache->slots.size() < cache_limit) {
        try {
            if (cache->slots.capacity() < cache_limit) cache->slots.reserve(cache_limit);
            cache->slots.push_back(s);
            return;
        } catch (...) {
            // No memory for the cache: the stack goes to the shared free list below.
        }
    }
    std::lock_guard lock(mutex_);
    try {
        class_for(s.size).free.push_back(s);
    } catch (...) {
        // Out of memory for the free list: the slot is lost until the runtime ends, which is
        // harmless (its pages were given back above).
    }
}

void stack_pool::forget_contents(stack_slot& s) noexcept {
#if ERLCPP_ASAN
    ASAN_UNPOISON_MEMORY_REGION(s.low, s.size);
#endif
    ::madvise(s.low, s.size, MADV_DONTNEED);
    if (s.guard == guard_kind::canary) std::memcpy(s.low, &stack_canary, sizeof stack_canary);
}

void stack_pool::drain_cache(stack_cache& cache) noexcept {
    std::lock_guard lock(mutex_);
    auto& c = class_for(default_size_);
    for (auto& s : cache.slots)
        c.free.push_back(s);
    cache.slots.clear();
}

bool stack_pool::find_guard_hit(const void* addr, const void** slot_low) noexcept {
    auto a = std::uintptr_t(addr);
    std::size_t n = slab_record_count.load(std::memory_order_acquire);
    for (std::size_t j = 0; j < n; ++j) {
        auto base = slab_records[j].base.load(std::memory_order_acquire);
        if (base == 0 || a < base || a >= slab_records[j].end.load(std::memory_order_relaxed))
            continue;
        auto slot = slab_records[j].slot_bytes.load(std::memory_order_relaxed);
        auto offset = (a - base) % slot;
        if (offset >= guard_bytes) return false; // inside a stack, not a guard
        *slot_low = reinterpret_cast<const void*>(a - offset + guard_bytes);
        return true;
    }
    return false;
}

} // namespace erl::detail
