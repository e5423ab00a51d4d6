#include "process/process_table.hpp"

#include <stdexcept>

#include "signals/signals.hpp"

namespace erl::detail {

process_table::process_table(std::size_t max_processes)
    : max_processes_(max_processes),
      max_chunks_((max_processes + chunk_size - 1) / chunk_size),
      chunks_(new std::atomic<process_control*>[max_chunks_]) {
    for (std::size_t i = 0; i < max_chunks_; ++i) chunks_[i].store(nullptr);
}

process_table::~process_table() {
    for (std::size_t i = 0; i < max_chunks_; ++i) delete[] chunks_[i].load();
}

process_control* process_table::allocate(std::vector<std::uint32_t>* cache) {
    std::uint32_t number;
    if (cache && !cache->empty()) {
        number = cache->back();
        cache->pop_back();
    } else {
        std::lock_guard lock(mutex_);
        if (in_use_.load(std::memory_order_relaxed) >= max_processes_)
            throw std::length_error("erl::spawn: system_limit (too many processes)");
        if (!free_.empty()) {
            number = free_.back();
            free_.pop_back();
            // Take a batch for the scheduler's cache while holding the lock anyway.
            if (cache) {
                std::size_t n = std::min(cache_batch, free_.size());
                cache->insert(cache->end(), free_.end() - n, free_.end());
                free_.resize(free_.size() - n);
            }
        } else {
            number = fresh_.load(std::memory_order_relaxed);
            if (number >= max_chunks_ * chunk_size)
                throw std::length_error("erl::spawn: system_limit (too many processes)");
            std::size_t c = number >> chunk_bits;
            if (!chunks_[c].load(std::memory_order_relaxed)) {
                auto* chunk = new process_control[chunk_size];
                chunks_[c].store(chunk, std::memory_order_release);
            }
            fresh_.store(number + 1, std::memory_order_release);
        }
    }
    in_use_.fetch_add(1, std::memory_order_relaxed);
    process_control* p = at(number);
    p->number = number;
    p->serial.store(p->serial.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    p->inbox.store(inbox_state::empty, std::memory_order_relaxed);
    p->refs.store(1, std::memory_order_release); // publishes the new serial to lookups
    return p;
}

void process_table::release(process_control* p, std::vector<std::uint32_t>* cache) noexcept {
    // Reset what the next process in this slot must not inherit.
    p->signals.reset();
    p->messages.release_all();
    p->trap_exit = false;
    p->exiting = false;
    p->terminating = false;
    p->in_receive_wait = false;
    p->reductions_total = 0;
    p->closure = nullptr;
    p->name_text.store(nullptr, std::memory_order_relaxed);
    p->has_name = false;
    p->timers_to_me.store(0, std::memory_order_relaxed);
    p->wait_timer = timer_entry{};
    in_use_.fetch_sub(1, std::memory_order_relaxed);
    if (cache && cache->size() < 4 * cache_batch) {
        cache->push_back(p->number);
        return;
    }
    std::lock_guard lock(mutex_);
    try {
        free_.push_back(p->number);
    } catch (...) {
        // The slot is lost until the runtime ends; nothing else is.
    }
}

void process_table::drain(std::vector<std::uint32_t>& cache) noexcept {
    std::lock_guard lock(mutex_);
    try {
        free_.insert(free_.end(), cache.begin(), cache.end());
    } catch (...) {
    }
    cache.clear();
}

} // namespace erl::detail
