// The runtime's process table: pid number -> control block. Blocks live in chunks that are never
// freed while the runtime lives, so a lookup needs no lock: read the block, take a reference if
// it is in use, check the serial.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include <erl/pid.hpp>

#include "process/process_control.hpp"

namespace erl::detail {

// Slots of ended processes are reused only after a grace period (quiescent-state-based
// reclamation): every scheduler must have finished the time slice it was in when the slot was
// retired. A process sending on a scheduler thread can therefore look a pid up and push to its
// inbox with no reference count at all: the slot cannot change hands under it.
inline constexpr std::uint64_t offline_bit = std::uint64_t(1) << 63;

// A scheduler's share of the table: slots ready for reuse and slots waiting out their grace.
struct slot_cache {
    std::vector<std::uint32_t> free;
    std::vector<std::uint32_t> retired;
    struct sealed_batch {
        std::vector<std::uint32_t> numbers;
        std::vector<std::uint64_t> snapshot;
    };
    std::deque<sealed_batch> waiting;
};

class process_table {
  public:
    static constexpr std::size_t chunk_bits = 12;
    static constexpr std::size_t chunk_size = std::size_t(1) << chunk_bits;
    static constexpr std::size_t cache_batch = 64;

    explicit process_table(std::size_t max_processes);
    ~process_table();

    // The schedulers' quiescence counters (set once, before any process runs).
    void set_clocks(std::vector<const std::atomic<std::uint64_t>*> clocks) {
        clocks_ = std::move(clocks);
    }

    // A fresh block holding one reference (the process's own), with a new serial. Throws
    // std::length_error (Erlang's system_limit) when every slot is taken (max_processes rounded
    // up to a whole chunk; the runtime checks max_processes itself: spawn_process).
    process_control* allocate(slot_cache* cache);
    // Retires a block whose last reference is gone. `cache`: the calling scheduler's, if any.
    void release(process_control* p, slot_cache* cache) noexcept;
    // Gives a scheduler's slots back (when it stops; no process runs any more).
    void drain(slot_cache& cache) noexcept;

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
    std::vector<std::uint64_t> snapshot() const;
    bool grace_passed(const std::vector<std::uint64_t>& snapshot) const noexcept;
    void reclaim(slot_cache& cache);
    std::uint32_t take_global(slot_cache* cache); // under mutex_

    std::vector<const std::atomic<std::uint64_t>*> clocks_;
    slot_cache global_retired_; // retirements from plain threads; guarded by mutex_
    std::size_t max_chunks_;
    std::unique_ptr<std::atomic<process_control*>[]> chunks_;
    std::mutex mutex_;
    std::vector<std::uint32_t> free_;
    std::atomic<std::uint32_t> fresh_{0}; // slots ever handed out
};

} // namespace erl::detail
