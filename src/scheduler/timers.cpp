// send_after / cancel_timer on the schedulers' timer wheels.
//
// A timer is an entry of the runtime's timer_store, queued on one scheduler's wheel and owned
// by that scheduler (its free list, its wheel's lock). The reference send_after returns names
// the entry by number and generation, so cancel_timer finds it without a table and tells a
// stale or foreign reference apart under the owner's lock alone: no lock of the runtime's.
//
// Timers aimed at a local process are also linked into that process's list (its
// timers_to_me holds the newest one's number), so that its end cancels them. All of one
// process's timers live on one wheel, whose lock guards the list too: the wheel of the newest
// one. A timer to a process with none goes to the setter's wheel, claiming the list with a
// compare-and-swap of timers_to_me from 0; others follow the list to its wheel.
#include <erl/timer.hpp>

#include <limits>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "scheduler/scheduler.hpp"
#include "scheduler/timer_store.hpp"
#include "scheduler/timers.hpp"

namespace erl::detail {

namespace {

// A timer's reference: three words like make_ref()'s, told apart from them and from call tags
// by the top bits of the last word (make_ref()'s stays below 2^14, call tags set bit 31; ours
// are 01). The rest: the entry's number (26 bits) and 54 bits of its generation, so a
// reference repeats only after 2^54 timers in one entry.
constexpr std::uint32_t mark_mask = 0xc0000000u;
constexpr std::uint32_t timer_mark = 0x40000000u;
constexpr unsigned index_bits = timer_store::index_bits;
constexpr std::uint32_t index_mask = (std::uint32_t(1) << index_bits) - 1;
constexpr std::uint64_t generation_mask = (std::uint64_t(1) << 54) - 1;
static_assert(index_bits == 26, "the reference layout assumes 26-bit entry numbers");

ref timer_ref(const runtime_impl& rt, const delivery_timer& e) noexcept {
    std::uint64_t g = e.generation & generation_mask;
    return ref(rt.node, rt.creation,
               {std::uint32_t(g & 0x3ffff), std::uint32_t(g >> 18),
                timer_mark | (std::uint32_t(g >> 50) << index_bits) | e.index});
}

bool decode(const ref& id, std::uint32_t& index, std::uint64_t& generation) noexcept {
    auto w = id.words();
    if (w.size() < 3 || (w.size() > 3 && (w[3] || (w.size() > 4 && w[4])))) return false;
    if ((w[2] & mark_mask) != timer_mark || w[0] >> 18) return false;
    index = w[2] & index_mask;
    generation = std::uint64_t(w[0]) | (std::uint64_t(w[1]) << 18) |
                 (std::uint64_t((w[2] & ~mark_mask) >> index_bits) << 50);
    return true;
}

// Takes `e` out of its destination's list (the owner's wheel lock held).
void unlist(runtime_impl& rt, delivery_timer& e) noexcept {
    if (e.dest_next) e.dest_next->dest_prev = e.dest_prev;
    if (e.dest_prev) {
        e.dest_prev->dest_next = e.dest_next;
    } else if (process_control* p = rt.table.at(e.dest.number())) {
        // The newest: the list's head moves on. (The block is the destination's: a process
        // whose list holds entries is not released before they are gone, drop_timers_to.)
        p->timers_to_me.store(e.dest_next ? e.dest_next->index + 1 : 0, std::memory_order_relaxed);
    }
    e.dest_next = nullptr;
    e.dest_prev = nullptr;
    e.listed = false;
}

// Returns `e` (off the wheel and out of any list) to its owner's free list; hands back its
// message. The owner's wheel lock held.
envelope_ptr free_entry(scheduler& owner, delivery_timer& e) noexcept {
    envelope_ptr message = std::move(e.message);
    ++e.generation; // references to this use of the entry no longer match
    e.next = owner.delivery_pool.free;
    owner.delivery_pool.free = &e;
    auto& pending = owner.delivery_pool.pending;
    pending.store(pending.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return message;
}

// Holds a reference to a destination process while a timer is set up (see start_timer_in).
struct process_ref {
    process_control* p = nullptr;
    process_ref() = default;
    process_ref(const process_ref&) = delete;
    process_ref& operator=(const process_ref&) = delete;
    ~process_ref() {
        if (p) p->unref();
    }
};

clock::time_point deadline_after(clock::time_point now, clock::duration delay) noexcept {
    if (delay <= clock::duration::zero()) return now;
    if (delay > clock::time_point::max() - now) return clock::time_point::max();
    return now + delay;
}

// `here`: the calling scheduler (null on a plain thread); `self`: the calling process.
ref start_timer_in(runtime_impl& rt, scheduler* here, process_control* self, const pid& to,
                   clock::duration delay, envelope_ptr& msg) {
    clock::time_point deadline = deadline_after(clock::now(), delay);
    // The destination's list, when it is a process of this runtime. A process sending to
    // itself holds its own block; another one's block is held by a reference while its list
    // changes, so the block is not released (and its list dropped, drop_timers_to) meanwhile.
    process_control* target = nullptr;
    process_ref held;
    if (rt.owns(to)) {
        if (self && self->number == to.number() &&
            self->serial.load(std::memory_order_relaxed) == to.serial()) {
            target = self;
        } else {
            held.p = target = rt.table.acquire(to);
            // Like Erlang, a timer to a process that has ended is over at once.
            if (!target || target->inbox.load(std::memory_order_acquire) == inbox_state::closed)
                return make_ref();
        }
    }
    for (;;) {
        scheduler* home = here ? here : &rt.pick_scheduler();
        std::uint32_t head = target ? target->timers_to_me.load(std::memory_order_acquire) : 0;
        delivery_timer* newest = nullptr;
        if (head) {
            newest = rt.timer_entries.find(head - 1, home); // the list's wheel
            if (!newest) [[unlikely]]
                std::abort(); // timers_to_me names an entry that never existed
        }
        std::unique_lock lock(home->timers);
        if (target && target->timers_to_me.load(std::memory_order_relaxed) != head)
            continue; // the list changed hands: look again
        timer_pool& pool = home->delivery_pool;
        if (!pool.free) rt.timer_entries.grow(home, pool);
        delivery_timer* e = pool.free;
        if (target) {
            if (!head) {
                // The first timer to `target`: its list is this wheel's now, unless another
                // wheel's setter claimed it first.
                std::uint32_t none = 0;
                if (!target->timers_to_me.compare_exchange_strong(
                        none, e->index + 1, std::memory_order_acq_rel, std::memory_order_relaxed))
                    continue;
            } else {
                newest->dest_prev = e;
                target->timers_to_me.store(e->index + 1, std::memory_order_relaxed);
            }
            e->dest_next = newest;
            e->listed = true;
        }
        pool.free = static_cast<delivery_timer*>(e->next);
        pool.pending.store(pool.pending.load(std::memory_order_relaxed) + 1,
                           std::memory_order_relaxed);
        e->dest = to;
        e->message = std::move(msg);
        bool earlier = home->timers.insert_locked(e, deadline);
        ref id = timer_ref(rt, *e);
        lock.unlock();
        // The owner may be asleep with a later wake-up time.
        if (earlier && home != here) home->notify();
        return id;
    }
}

bool cancel_timer_in(runtime_impl& rt, const ref& id) noexcept {
    std::uint32_t index = 0;
    std::uint64_t generation = 0;
    if (id.node() != rt.node || id.creation() != rt.creation || !decode(id, index, generation))
        return false;
    scheduler* owner = nullptr;
    delivery_timer* e = rt.timer_entries.find(index, owner);
    if (!e) return false;
    envelope_ptr message; // destroyed after the lock is released
    {
        std::lock_guard lock(owner->timers);
        // A timer that fired or was cancelled is off the wheel, and its entry's generation has
        // moved on (a later timer in the same entry is queued under another generation).
        if (!e->queued() || (e->generation & generation_mask) != generation) return false;
        owner->timers.remove_locked(e);
        if (e->listed) unlist(rt, *e);
        message = free_entry(*owner, *e);
    }
    return true;
}

} // namespace

fired_timer take_fired(runtime_impl& rt, scheduler& owner, delivery_timer& e) noexcept {
    if (e.listed) unlist(rt, e);
    pid dest = e.dest;
    return {dest, free_entry(owner, e)};
}

void drop_timers_to(process_control& p) noexcept {
    runtime_impl& rt = *p.rt;
    envelope* dropped = nullptr; // their messages, destroyed once no lock is held
    for (;;) {
        std::uint32_t head = p.timers_to_me.load(std::memory_order_acquire);
        if (!head) break;
        scheduler* owner = nullptr;
        delivery_timer* e = rt.timer_entries.find(head - 1, owner);
        if (!e) [[unlikely]]
            std::abort();
        std::lock_guard lock(owner->timers);
        if (p.timers_to_me.load(std::memory_order_relaxed) != head) continue;
        while (e) {
            delivery_timer* next = e->dest_next;
            owner->timers.remove_locked(e);
            e->dest_next = nullptr;
            e->dest_prev = nullptr;
            e->listed = false;
            if (envelope* m = free_entry(*owner, *e).release()) {
                m->next = dropped;
                dropped = m;
            }
            e = next;
        }
        p.timers_to_me.store(0, std::memory_order_relaxed);
        break;
    }
    while (dropped) {
        envelope* next = dropped->next;
        dropped->destroy();
        dropped = next;
    }
}

void drop_all_timers(runtime_impl& rt) noexcept {
    rt.timer_entries.for_each([&](delivery_timer& e) {
        e.message.reset();
        // No list outlives this: a block released later (with the schedulers gone) finds none.
        if (e.listed && !e.dest_prev)
            if (process_control* p = rt.table.at(e.dest.number()))
                p->timers_to_me.store(0, std::memory_order_relaxed);
    });
}

std::size_t pending_timers(const runtime_impl& rt) noexcept {
    std::int64_t n = 0;
    for (auto& s : rt.schedulers)
        n += s->delivery_pool.pending.load(std::memory_order_relaxed);
    return std::size_t(std::max<std::int64_t>(0, n));
}

ref start_timer(const pid& to, clock::duration delay, envelope_ptr msg) {
    process_control* self = current_process();
    if (self) return start_timer_in(*self->rt, self->sched, self, to, delay, msg);
    // From a plain thread: the timer lives in the destination's runtime.
    ref id;
    bool found = with_runtime(to.creation(), [&](runtime_impl& rt) {
        id = start_timer_in(rt, nullptr, nullptr, to, delay, msg);
    });
    if (!found) return make_ref(); // nobody to deliver to: a timer that is already over
    return id;
}

} // namespace erl::detail

namespace erl {

bool cancel_timer(const ref& timer) {
    detail::process_control* self = detail::current_process();
    if (self && self->rt->creation == timer.creation())
        return detail::cancel_timer_in(*self->rt, timer);
    bool cancelled = false;
    detail::with_runtime(timer.creation(), [&](detail::runtime_impl& rt) {
        cancelled = detail::cancel_timer_in(rt, timer);
    });
    return cancelled;
}

} // namespace erl
