// The runtime's process table: pid number -> control block. Blocks live in chunks that are never
// freed while the runtime lives, so a lookup needs no lock: read the block, take a reference if
// it is in use, check the serial.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <erl/pid.hpp>

#include "process/process_control.hpp"

namespace erl::detail {

class process_table {
  public:
    static constexpr std::size_t chunk_bits = 12;
    static constexpr std::size_t chunk_size = std::size_t(1) << chunk_bits;
    static constexpr std::size_t cache_batch = 64;

    explicit process_table(std::size_t max_processes);
    ~process_table();

    // A fresh block holding one reference (the process's own), with a new serial. Throws
    // erl::system_limit when max_processes are alive.
    process_control* allocate(std::vector<std::uint32_t>* cache);
    // Returns a block whose last reference is gone. `cache`: the calling scheduler's, if any.
    void release(process_control* p, std::vector<std::uint32_t>* cache) noexcept;
    // Gives a scheduler's cached slots back (when it stops).
    void drain(std::vector<std::uint32_t>& cache) noexcept;

    // The live process `id` names, with a reference the caller must drop; nullptr when none.
    process_control* acquire(const pid& id) noexcept {
        process_control* p = at(id.number());
        if (!p || !p->try_ref()) return nullptr;
        if (p->serial.load(std::memory_order_relaxed) != id.serial()) {
            p->unref();
            return nullptr;
        }
        return p;
    }
    process_control* at(std::uint32_t number) const noexcept {
        std::size_t c = number >> chunk_bits;
        if (c >= max_chunks_) return nullptr;
        process_control* chunk = chunks_[c].load(std::memory_order_acquire);
        return chunk ? chunk + (number & (chunk_size - 1)) : nullptr;
    }
    std::size_t capacity() const noexcept { return fresh_.load(std::memory_order_acquire); }

  private:
    std::size_t max_processes_;
    std::size_t max_chunks_;
    std::unique_ptr<std::atomic<process_control*>[]> chunks_;
    std::mutex mutex_;
    std::vector<std::uint32_t> free_;
    std::atomic<std::uint32_t> fresh_{0}; // slots ever handed out
    std::atomic<std::size_t> in_use_{0};
};

} // namespace erl::detail
