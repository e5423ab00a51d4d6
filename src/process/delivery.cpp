// Getting an envelope into a process's inbox, from any thread.
#include <erl/message.hpp>

#include <erl/registry.hpp>

#include <fmt/format.h>

#include <algorithm>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "scheduler/scheduler.hpp"
#include "signals/signals.hpp"

namespace erl::detail {

namespace {

// Sender pacing. A message to a process that is already behind (messages queued that it has
// not received yet) costs the sender reductions in proportion to that backlog, as the BEAM's
// send did ("sender punishment"): when many processes feed one on a shared scheduler, the
// senders give way sooner, the receiver runs before its queue outgrows the caches, and memory
// stays bounded instead of every message of a burst being alive at once. (Only for senders of
// the receiver's runtime, on the hot path: `arrivals` is written without a read-modify-write.)
constexpr std::size_t backlog_free = 64;   // a backlog this short costs nothing extra
constexpr unsigned backlog_cost_shift = 3; // then one reduction per 8 queued messages

// `to_inbox`: the message went to the inbox (counted in `arrivals`), not to the message list.
inline void pace_sender(process_control& self, process_control& to, bool to_inbox = true) noexcept {
    std::uint32_t queued = to.arrivals.load(std::memory_order_relaxed);
    if (to_inbox) to.arrivals.store(++queued, std::memory_order_relaxed);
    std::size_t backlog = queued + to.messages.size();
    if (backlog <= backlog_free || self.reductions <= 2) [[likely]]
        return;
    // The cost may end the time slice, but never during this send: the sender gives way at its
    // next reduction, so one that sends and ends (a worker reporting back) is not switched out
    // and in again only to return.
    auto cost = std::int32_t(std::min<std::size_t>(backlog >> backlog_cost_shift, 1u << 20));
    self.reductions = std::max(self.reductions - cost, 2);
}

// Pushes `e` to `to` of runtime `rt`; false when `to` is not alive (e is then destroyed).
bool push_local(runtime_impl& rt, const pid& to, envelope_ptr& e, scheduler* here) noexcept {
    if (here && &here->rt == &rt) {
        // On one of the runtime's own schedulers: no reference needed (process_table.hpp).
        process_control* p = rt.table.at(to.number());
        if (!p) return false;
        if (p->soft_on.load(std::memory_order_relaxed) == here)
            return here->deliver_soft(p, e.release(), to.serial());
        push_result r = p->push_checked(e.get(), to.serial());
        if (r == push_result::closed) return false;
        e.release();
        if (r == push_result::woke) {
            make_ready(p, here);
        } else {
            note_if_soft(p, here);
        }
        return true;
    }
    process_control* p = rt.table.acquire(to);
    if (!p) return false;
    push_result r = p->push(e.get());
    if (r != push_result::closed) e.release();
    if (r == push_result::woke) {
        make_ready(p, here);
    } else if (r == push_result::queued) {
        note_if_soft(p, here);
    }
    p->unref(here);
    return r != push_result::closed;
}

} // namespace

bool send_signal(runtime_impl& rt, const pid& to, envelope_ptr e) noexcept {
    scheduler* here = current_scheduler();
    if (rt.owns(to)) return push_local(rt, to, e, here);
    bool delivered = false;
    if (to.is_local()) {
        with_runtime(to.creation(),
                     [&](runtime_impl& other) { delivered = push_local(other, to, e, here); });
    } else if (rt.remote && !to.is_null()) {
        // (The stand-in pid of a monitor by {Name, Node} is not null: its demonitor must reach
        // that node as a DEMONITOR_P, or the monitor stays on both sides.)
        process_control* self = here ? here->running : nullptr;
        try {
            rt.remote->route(self ? self->self_pid() : pid(), to, std::move(e), nullptr);
        } catch (...) {
            // Out of memory on the way to another node: that signal is lost, as over a
            // connection that broke.
        }
        return true; // the other node answers for its processes (noproc, noconnection)
    }
    return delivered;
}

namespace {

// deliver() for every case but a process sending within its runtime.
[[gnu::noinline]] void deliver_elsewhere(const pid& to, envelope* raw, message_to_term convert,
                                         scheduler* here, process_control* self) {
    envelope_ptr e(raw);
    if (!self) {
        // From a plain thread. A pid of another node is dropped until distribution reaches it.
        if (to.is_local())
            with_runtime(to.creation(), [&](runtime_impl& rt) { push_local(rt, to, e, nullptr); });
        return;
    }
    runtime_impl& rt = *self->rt;
    if (to.is_local()) {
        with_runtime(to.creation(), [&](runtime_impl& other) { push_local(other, to, e, here); });
    } else if (rt.remote && !to.is_null()) {
        if (!convert)
            throw badarg(fmt::format("erl::send: {} is a process of node {}: only erl::term and "
                                     "types with a term conversion can be sent there",
                                     to, to.node()));
        rt.remote->route(self->self_pid(), to, std::move(e), convert);
    }
    count_reduction(*self);
}

} // namespace

ERLCPP_READS_THREAD void deliver(const pid& to, envelope* raw, message_to_term convert) {
    scheduler* here = tl_scheduler; // read once, before anything can suspend
    process_control* self = here ? here->running : nullptr;
    // (The scheduler's runtime is the running process's: here->rt, read from the scheduler,
    // spares a line of the sender's control block.)
    if (self && here->rt.owns(to)) [[likely]] {
        // The hot path, a process sending within its runtime: push_local without the checks
        // it needs for other callers.
        process_control* p = here->rt.table.at(to.number());
        if (p && p->soft_on.load(std::memory_order_relaxed) == here) {
            // It waits on this thread's scheduler: no atomic read-modify-write at all.
            here->deliver_soft(p, raw, to.serial());
        } else if (p && here->deliver_held(p, raw, to.serial())) {
            // It is ready here and only this thread can run it: no atomic instruction either.
            pace_sender(*self, *p, false);
        } else {
            push_result r = p ? p->push_checked(raw, to.serial()) : push_result::closed;
            if (r == push_result::queued) {
                note_if_soft(p, here);
                // Only a receiver of this thread's scheduler: giving way here lets it run, one
                // on another does not. There, pacing only cost the senders their time slices
                // and a read of a line the receiver writes at every receive (100 senders to
                // one on 2 schedulers: 115-126 -> 35-39 ns a message; without pacing here at
                // all, 68-70).
                if (scheduler_hint(p) == here) pace_sender(*self, *p);
            } else if (r == push_result::woke) {
                here->ready_here(p);
            } else {
                raw->destroy();
            }
        }
        if (--self->reductions <= 0) [[unlikely]]
            yield_spent(*self);
        return;
    }
    deliver_elsewhere(to, raw, convert, here, self);
}

} // namespace erl::detail
