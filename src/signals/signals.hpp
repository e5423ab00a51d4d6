// The signals layer: what other processes can do to a process besides messaging it (links,
// exits, monitors, introspection), and what a process's end sets off. Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_set>
#include <vector>

#include <erl/atom.hpp>
#include <erl/detail/call_slot.hpp>
#include <erl/detail/envelope.hpp>
#include <erl/exit_reason.hpp>
#include <erl/monitor.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/monitor_table.hpp"

namespace erl::detail {

// Something a process owns and that must go when it ends (a socket): released by the layer that
// made it, through plain function pointers, so this layer needs to know nothing about it.
struct owned_resource {
    std::uint64_t id = 0;
    // Releases the resource if `owner` still owns it.
    void (*release)(runtime_impl& rt, std::uint64_t id, const pid& owner) noexcept = nullptr;
    // Whether `owner` still owns it (entries that lost it are dropped now and then).
    bool (*held)(runtime_impl& rt, std::uint64_t id, const pid& owner) noexcept = nullptr;
};

// One side of a call's monitor (see erl/detail/call_signal.hpp): the call's slot, the tag and
// the other process (the caller for the server's record, the server for the caller's).
struct call_monitor {
    call_slot* slot = nullptr;
    ref tag;
    pid other;
};

// A process's records of one side of calls' monitors, addressed by index (each record's slot
// keeps its index): adding and removing one is a few stores, with no search.
class call_list {
  public:
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    call_monitor& operator[](std::size_t i) noexcept { return items_[i]; }
    const call_monitor& operator[](std::size_t i) const noexcept { return items_[i]; }
    const call_monitor* begin() const noexcept { return items_.get(); }
    const call_monitor* end() const noexcept { return items_.get() + size_; }
    // Appends a record; returns its index.
    std::uint32_t push(call_slot* slot, const ref& tag, const pid& other) {
        if (size_ == capacity_) [[unlikely]]
            grow();
        items_[size_] = call_monitor{slot, tag, other};
        return std::uint32_t(size_++);
    }
    // Removes record i, moving the last one into its place: returns the moved record's slot
    // (its index is now i), or nullptr when i was the last.
    call_slot* take_out(std::size_t i) noexcept {
        if (i == --size_) return nullptr;
        items_[i] = items_[size_];
        return items_[i].slot;
    }
    void clear() noexcept { size_ = 0; }

  private:
    void grow();
    std::unique_ptr<call_monitor[]> items_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

struct signal_state {
    std::vector<owned_resource> resources;
    std::size_t resources_checked = 8; // compact `resources` when it grows past this
    std::unordered_set<pid> links;
    monitor_table monitoring;   // monitors this process holds: ref -> target
    monitor_table monitored_by; // monitors on this process: ref -> watcher
    // Calls' monitors, outside the tables: those on this process (the calls it serves; index
    // call_slot::server_index) and those it holds (its own calls; call_slot::caller_index).
    call_list calls_in;
    call_list calls_out;
};

inline constexpr std::size_t npos = ~std::size_t(0);
// The index of the caller's record with `tag` in p's calls_out, or npos.
std::size_t find_call_out(const process_control& p, const ref& tag) noexcept;
// Removes p's calls_out[i] and tells the server (demonitor).
void drop_call_out(process_control& p, std::size_t i) noexcept;
// The demonitor signal of a caller's record (it holds the call's slot; the record's owner, if it
// has one, moves to it).
envelope_ptr call_demonitor_signal(const pid& self, const call_monitor& c);
// Removes the DOWNs for `id` from p's mailbox.
void flush_down(process_control& p, const ref& id) noexcept;

// A process's signal state, made at its first use.
signal_state& make_signals(process_control& p);
inline signal_state& signals_of(process_control& p) {
    return p.signals ? *p.signals : make_signals(p);
}

// Changes the runtime's count of monitor table entries; from code running in `p` (so on the
// thread of p's scheduler, which owns the counter's cell).
inline void count_monitors(process_control& p, std::int64_t delta) noexcept {
    p.rt->monitor_count.add(p.sched->index, delta);
}

// The records of calls' monitors (see erl/detail/call_signal.hpp), on the hot path of every
// call. Each removal releases the owner the record holds, if it holds one.

// A record that goes releases the owner it holds (`hold`: the slot's server_hold or caller_hold).
inline void release_hold(call_slot* s, std::uint8_t& hold) noexcept {
    if (!hold) return;
    hold = 0;
    slot_ref::drop_owner(s);
}

inline void add_call_in(process_control& p, call_slot* slot, const ref& tag, const pid& caller) {
    std::uint32_t i = signals_of(p).calls_in.push(slot, tag, caller);
    slot->server_index.store(i, std::memory_order_relaxed);
    count_monitors(p, 1);
}

// False (and nothing changes) when `slot`'s call has no record on p.
inline bool remove_call_in(process_control& p, call_slot* slot) noexcept {
    if (!p.signals) return false;
    auto& v = p.signals->calls_in;
    std::uint32_t i = slot->server_index.load(std::memory_order_relaxed);
    if (i >= v.size() || v[i].slot != slot) return false;
    if (call_slot* moved = v.take_out(i)) moved->server_index.store(i, std::memory_order_relaxed);
    slot->server_index.store(call_slot::no_index, std::memory_order_relaxed);
    count_monitors(p, -1);
    release_hold(slot, slot->server_hold);
    return true;
}

// A dying server's records (after their DOWNs are sent).
void clear_calls_in(process_control& p) noexcept;

inline void add_call_out(process_control& p, call_slot* slot, const ref& tag, const pid& server) {
    slot->caller_index = signals_of(p).calls_out.push(slot, tag, server);
    count_monitors(p, 1);
}

inline void remove_call_out(process_control& p, std::size_t i) noexcept {
    auto& v = p.signals->calls_out;
    call_slot* slot = v[i].slot;
    if (call_slot* moved = v.take_out(i)) moved->caller_index = std::uint32_t(i);
    slot->caller_index = call_slot::no_index;
    count_monitors(p, -1);
    release_hold(slot, slot->caller_hold);
}

// The runtime's own signals are allocated with new: each frees itself with delete.
template <typename Signal>
struct signal_ops {
    static void destroy(envelope* e) noexcept { delete static_cast<Signal*>(e); }
};

struct exit_signal final : envelope {
    pid from;
    exit_reason reason;
    bool via_link;
    exit_signal(pid f, exit_reason r, bool link)
        : envelope(ops, signal_kind::exit), from(f), reason(std::move(r)), via_link(link) {}
    static constexpr envelope_ops ops{nullptr, &signal_ops<exit_signal>::destroy};
};

struct link_signal final : envelope {
    pid from;
    link_signal(pid f, signal_kind k) : envelope(ops, k), from(f) {}
    static constexpr envelope_ops ops{nullptr, &signal_ops<link_signal>::destroy};
};

struct monitor_signal final : envelope {
    pid from;
    ref id;
    slot_ref call; // a demonitor of a call's monitor: the call (whose record goes)
    monitor_signal(pid f, ref r, signal_kind k) : envelope(ops, k), from(f), id(r) {}
    static constexpr envelope_ops ops{nullptr, &signal_ops<monitor_signal>::destroy};
};

struct info_request final : envelope {
    pid from;
    ref id;
    info_request(pid f, ref r) : envelope(ops, signal_kind::info), from(f), id(r) {}
    static constexpr envelope_ops ops{nullptr, &signal_ops<info_request>::destroy};
};
void answer_info_request(process_control& p, envelope& request);

// Wakes a process that waits for something other than a message (a blocking job's end): the
// waiter checks its condition when it runs again; the signal itself is dropped.
struct wake_signal final : envelope {
    wake_signal() noexcept : envelope(ops, signal_kind::wake) {}
    static constexpr envelope_ops ops{nullptr, &signal_ops<wake_signal>::destroy};
};

// A DOWN on its way to a watcher (kind down: the watcher forgets the monitor as it takes it).
envelope_ptr make_down_signal(down_msg d);

// A bare wake-up: absorbing it does nothing, but pushing it makes a parked process run.
envelope_ptr make_wake_signal();
// Wakes the parked (or about to park) process `p`, which must be alive: the caller knows it is,
// e.g. because `p` is registered as a waiter under a lock the caller holds.
void wake_process(process_control& p) noexcept;

struct adopt_signal final : envelope {
    owned_resource resource;
    explicit adopt_signal(owned_resource r) : envelope(ops, signal_kind::adopt), resource(r) {}
    static constexpr envelope_ops ops{nullptr, &signal_ops<adopt_signal>::destroy};
};
// The calling process now owns `r`; released when it ends.
void own_resource(process_control& p, owned_resource r);
void answer_info_request_dead(envelope& request);

// Handles one non-message signal taken from the inbox (owns and frees it). May decide that the
// process ends (sets p.exiting and p.exit_with); may append messages (exit_msg, down_msg).
void handle_signal(process_control& p, envelope* e);

// A process's end: closes its inbox, answers what was still queued, sends exit signals to its
// links and DOWN to its watchers, drops its own monitors, releases its name and timers. Runs on
// the dying process's stack; never throws.
void terminate_process(process_control& p, const exit_reason& reason) noexcept;

// spawn_link: both sides of the link, made before the child runs.
void link_new_child(process_control& parent, process_control& child);

// Pushes a signal to a pid; false when the target does not exist (the envelope is destroyed).
bool send_signal(runtime_impl& rt, const pid& to, envelope_ptr e) noexcept;

} // namespace erl::detail
