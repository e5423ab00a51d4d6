#include "scheduler/timer_store.hpp"

#include <stdexcept>

namespace erl::detail {

timer_store::~timer_store() {
    for (auto& slot : top_) {
        std::atomic<chunk*>* directory = slot.load(std::memory_order_relaxed);
        if (!directory) continue;
        for (std::size_t i = 0; i < (std::size_t(1) << directory_bits); ++i)
            delete directory[i].load(std::memory_order_relaxed);
        delete[] directory;
    }
}

void timer_store::grow(scheduler* owner, timer_pool& pool) {
    constexpr std::uint32_t max_chunks = std::uint32_t(1) << (directory_bits + top_bits);
    // Numbers are never given back (a chunk stays its scheduler's), so a full store stays full.
    std::uint32_t id = chunks_.load(std::memory_order_relaxed);
    do {
        if (id >= max_chunks)
            throw std::length_error("erl::send_after: too many timers pending (2^26)");
    } while (!chunks_.compare_exchange_weak(id, id + 1, std::memory_order_relaxed));
    auto& top = top_[id >> directory_bits];
    std::atomic<chunk*>* directory = top.load(std::memory_order_acquire);
    if (!directory) {
        // Two schedulers may both need this directory: one of them installs it.
        auto* fresh = new std::atomic<chunk*>[std::size_t(1) << directory_bits]();
        if (top.compare_exchange_strong(directory, fresh, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
            directory = fresh;
        } else {
            delete[] fresh;
        }
    }
    auto* c = new chunk(owner);
    // Linked in number order, lowest first out, so that a few timers stay in a few lines.
    std::uint32_t first = id << chunk_bits;
    for (std::size_t i = chunk_size; i-- > 0;) {
        auto* e = new (&c->storage[i * sizeof(delivery_timer)]) delivery_timer;
        e->index = first + std::uint32_t(i);
        e->next = pool.free;
        pool.free = e;
    }
    // Published last: find() then sees the numbers and the owner.
    directory[id & ((1u << directory_bits) - 1)].store(c, std::memory_order_release);
}

} // namespace erl::detail
