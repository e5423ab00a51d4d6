#include "process/process_table.hpp"

#include <stdexcept>

#include "signals/signals.hpp"

namespace erl::detail {

process_table::process_table(std::size_t max_processes)
    : max_chunks_((max_processes + chunk_size - 1) / chunk_size),
      chunks_(new std::atomic<process_control*>[max_chunks_]) {
    for (std::size_t i = 0; i < max_chunks_; ++i)
        chunks_[i].store(nullptr);
}

process_table::~process_table() {
    for (std::size_t i = 0; i < max_chunks_; ++i)
        delete[] chunks_[i].load();
}

std::vector<std::uint64_t> process_table::snapshot() const {
    std::vector<std::uint64_t> snap(clocks_.size());
    for (std::size_t i = 0; i < clocks_.size(); ++i)
        snap[i] = clocks_[i]->load(std::memory_order_acquire);
    return snap;
}

bool process_table::grace_passed(const std::vector<std::uint64_t>& snap) const noexcept {
    for (std::size_t i = 0; i < clocks_.size(); ++i) {
        std::uint64_t now = clocks_[i]->load(std::memory_order_acquire);
        if ((now & offline_bit) == 0 && now == snap[i]) return false;
    }
    return true;
}

void process_table::reclaim(slot_cache& cache) {
    if (!cache.retired.empty()) {
        cache.waiting.push_back({std::move(cache.retired), snapshot()});
        cache.retired = {};
        cache.retired.reserve(cache_batch); // release() retires inline while there is room
    }
    while (!cache.waiting.empty() && grace_passed(cache.waiting.front().snapshot)) {
        auto& batch = cache.waiting.front().numbers;
        cache.free.insert(cache.free.end(), batch.begin(), batch.end());
        cache.waiting.pop_front();
    }
}

std::uint32_t process_table::take_global(slot_cache* cache) {
    reclaim(global_retired_);
    if (!global_retired_.free.empty()) {
        std::uint32_t number = global_retired_.free.back();
        global_retired_.free.pop_back();
        if (cache) {
            std::size_t n = std::min(cache_batch, global_retired_.free.size());
            cache->free.insert(cache->free.end(), global_retired_.free.end() - n,
                               global_retired_.free.end());
            global_retired_.free.resize(global_retired_.free.size() - n);
        }
        return number;
    }
    std::uint32_t number = fresh_.load(std::memory_order_relaxed);
    if (number >= max_chunks_ * chunk_size) {
        // Slots that still wait out their grace will do; anything else is the limit.
        if (!global_retired_.waiting.empty() || (cache && !cache->waiting.empty()))
            return no_slot_yet;
        throw std::length_error("erl::spawn: system_limit (too many processes)");
    }
    std::size_t c = number >> chunk_bits;
    if (!chunks_[c].load(std::memory_order_relaxed)) {
        auto* chunk = new process_control[chunk_size];
        chunks_[c].store(chunk, std::memory_order_release);
    }
    fresh_.store(number + 1, std::memory_order_release);
    return number;
}

process_control* process_table::allocate_slow(slot_cache* cache) {
    std::uint32_t number;
    if (cache && (cache->retired.size() >= cache_batch || !cache->waiting.empty())) reclaim(*cache);
    if (cache && !cache->free.empty()) {
        number = cache->free.back();
        cache->free.pop_back();
    } else {
        std::lock_guard lock(mutex_);
        number = take_global(cache);
        if (number == no_slot_yet) return nullptr;
    }
    return claim(number);
}

void process_table::share_surplus(slot_cache& cache) {
    std::size_t held = cache.free.size() + cache.waiting.size() * cache_batch;
    if (held <= cache_keep) return;
    // The oldest batches waiting out their grace, then the free slots beyond a batch.
    while (cache.waiting.size() > 1 && held > cache_keep) {
        global_retired_.waiting.push_back(std::move(cache.waiting.front()));
        cache.waiting.pop_front();
        held -= cache_batch;
    }
    if (held > cache_keep && cache.free.size() > cache_batch) {
        auto& to = global_retired_.free;
        to.insert(to.end(), cache.free.begin() + cache_batch, cache.free.end());
        cache.free.resize(cache_batch);
    }
}

void process_table::drop_signals(process_control* p) noexcept {
    p->signals.reset();
}

void process_table::retire_slow(std::uint32_t number, slot_cache* cache) noexcept {
    try {
        if (cache) {
            if (cache->retired.size() >= cache_batch) {
                reclaim(*cache); // seals the full batch (and room for the next)
                std::lock_guard lock(mutex_);
                share_surplus(*cache);
            }
            cache->retired.push_back(number);
            return;
        }
        std::lock_guard lock(mutex_);
        global_retired_.retired.push_back(number);
    } catch (...) {
        // Out of memory: the slot is lost until the runtime ends; nothing else is.
    }
}

void process_table::drain(slot_cache& cache) noexcept {
    std::lock_guard lock(mutex_);
    try {
        auto& to = global_retired_.free;
        to.insert(to.end(), cache.free.begin(), cache.free.end());
        to.insert(to.end(), cache.retired.begin(), cache.retired.end());
        for (auto& b : cache.waiting)
            to.insert(to.end(), b.numbers.begin(), b.numbers.end());
    } catch (...) {
    }
    cache = slot_cache{};
}

} // namespace erl::detail
