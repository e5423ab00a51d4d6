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
#include "scheduler/timers.hpp"

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
    // Slots a scheduler keeps (free or waiting out their grace) before it hands the rest to the
    // shared pool: one that runs what others spawn would otherwise gather them all.
    static constexpr std::size_t cache_keep = 8 * cache_batch;

    explicit process_table(std::size_t max_processes);
    ~process_table();

    // The schedulers' quiescence counters (set once, before any process runs).
    void set_clocks(std::vector<const std::atomic<std::uint64_t>*> clocks) {
        clocks_ = std::move(clocks);
    }

    // A fresh block holding one reference (the process's own), with a new serial. Throws
    // std::length_error (Erlang's system_limit) when every slot is taken (max_processes rounded
    // up to a whole chunk; the runtime checks max_processes itself: spawn_process). Returns
    // nullptr when the only slots left still wait out their grace: the caller ends its time
    // slice (which may be what they wait for) and asks again.
    // The common case (a slot in the scheduler's cache) is inline.
    process_control* allocate(slot_cache* cache) {
        if (cache && !cache->free.empty()) [[likely]] {
            std::uint32_t number = cache->free.back();
            cache->free.pop_back();
            if (!cache->free.empty()) prefetch_control_block(at(cache->free.back()));
            return claim(number);
        }
        return allocate_slow(cache);
    }
    // Retires a block whose last reference is gone. `cache`: the calling scheduler's, if any.
    // Inline while the cache's retired list has room (reclaim reserves a batch's worth).
    void release(process_control* p, slot_cache* cache) noexcept {
        reset_for_reuse(p);
        if (cache && cache->retired.size() < cache->retired.capacity()) [[likely]] {
            cache->retired.push_back(p->number); // cannot reallocate, so cannot throw
            return;
        }
        retire_slow(p->number, cache);
    }
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
    process_control* allocate_slow(slot_cache* cache);
    void retire_slow(std::uint32_t number, slot_cache* cache) noexcept;
    static void drop_signals(process_control* p) noexcept; // signal_state is complete there
    // A slot taken for a new process: one reference (the process's own), a new serial.
    process_control* claim(std::uint32_t number) noexcept {
        process_control* p = at(number);
        p->number = number;
        p->serial.store(p->serial.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        // Release: a sender that sees the fresh inbox also sees the new serial (and drops a
        // message meant for the slot's previous process).
        p->inbox.store(inbox_state::empty, std::memory_order_release);
        p->refs.store(1, std::memory_order_release);
        return p;
    }
    // What the next process in this slot must not inherit.
    static void reset_for_reuse(process_control* p) noexcept {
        if (p->signals) [[unlikely]]
            drop_signals(p);
        p->messages.release_all();
        p->trap_exit = false;
        p->exiting = false;
        p->terminating = false;
        p->in_receive_wait = false;
        p->reductions_total = 0;
        p->closure = nullptr;
        p->closure_block = nullptr;
        p->hibernated = false;
        p->fresh = false;
        p->name_text.store(nullptr, std::memory_order_relaxed);
        p->has_name = false;
        // A timer set by a process that looked this one up just before it ended may still be
        // aimed at it: its list must not pass to the next process in the slot.
        if (p->timers_to_me.load(std::memory_order_acquire) != 0) [[unlikely]]
            drop_timers_to(*p);
        // (Also ends a function staged in the block, if the process never ran: end_closure
        // destroyed it.)
        std::construct_at(&p->wait_timer);
    }
    std::vector<std::uint64_t> snapshot() const;
    bool grace_passed(const std::vector<std::uint64_t>& snapshot) const noexcept;
    void reclaim(slot_cache& cache);
    void share_surplus(slot_cache& cache); // under mutex_
    // take_global's answer when the only slots left still wait out their grace.
    static constexpr std::uint32_t no_slot_yet = ~std::uint32_t(0);
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
