// monitor, demonitor, and the monitors of calls.
#include <erl/detail/call_signal.hpp>
#include <erl/gen.hpp>
#include <erl/monitor.hpp>
#include <erl/registry.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "scheduler/scheduler.hpp"
#include "signals/signals.hpp"

namespace erl {

using namespace detail;

namespace {

ref monitor_impl(process_control& p, const pid& target, atom name) {
    handle_signals(p);
    const pid self = p.self_pid();
    ref id = make_ref();
    signals_of(p).monitoring.emplace(id, target);
    count_monitors(p, 1);
    bool sent =
        target && send_signal(*p.rt, target,
                              envelope_ptr(new monitor_signal(self, id, signal_kind::monitor)));
    if (!sent) {
        // Already dead (or never was): DOWN noproc, queued behind what is already there.
        p.push(make_down_signal({id, target, exit_reason::noproc(), name}).release());
    }
    count_reduction(p);
    return id;
}

} // namespace

ref monitor(const pid& target) {
    return monitor_impl(require_process("monitor"), target, atom());
}

ref monitor(atom name) {
    auto& p = require_process("monitor");
    auto target = whereis(name);
    return monitor_impl(p, target.value_or(pid()), name);
}

bool demonitor(const ref& id, demonitor_option option) {
    auto& p = require_process("demonitor");
    handle_signals(p);
    bool active = false;
    if (p.signals) {
        if (auto* m = p.signals->monitoring.find(id)) {
            active = true;
            pid target = m->other;
            p.signals->monitoring.erase(id);
            count_monitors(p, -1);
            send_signal(*p.rt, target,
                        envelope_ptr(new monitor_signal(p.self_pid(), id, signal_kind::demonitor)));
        } else if (std::size_t i = find_call_out(p, id); i != npos) {
            active = true;
            drop_call_out(p, i);
        }
    }
    if (option == demonitor_option::flush) flush_down(p, id);
    return active;
}

void detail::flush_down(process_control& p, const ref& id) noexcept {
    for (envelope* e = p.messages.front(); e;) {
        envelope* next = e->next;
        if (e->type() == type_key_of<down_msg>() &&
            static_cast<message_envelope<down_msg>*>(e)->value.id == id) {
            p.messages.remove(e);
            e->destroy();
        }
        e = next;
    }
}

namespace {
// Call tags: make_ref()'s third word is below 2^14; these have the top bit set, the thread's
// number in the rest, and the thread's count in the first two words (18 and 32 bits, as
// make_ref's). So they never equal a make_ref() reference, nor one another.
std::atomic<std::uint32_t> call_tag_threads{0};
constinit thread_local std::uint32_t tl_call_tag_thread __attribute__((tls_model("initial-exec"))) =
    0;
constinit thread_local std::uint64_t tl_call_tag_count __attribute__((tls_model("initial-exec"))) =
    0;
} // namespace

// The process this thread runs, for the ERLCPP_READS_THREAD functions below (which read it
// first, before anything that could suspend: scheduler.hpp).
namespace {
inline process_control* running_here() noexcept {
    scheduler* s = tl_scheduler;
    return s ? s->running : nullptr;
}
} // namespace

ERLCPP_READS_THREAD call_start detail::begin_call() {
    std::uint32_t t = tl_call_tag_thread;
    if (t == 0) [[unlikely]]
        t = tl_call_tag_thread = call_tag_threads.fetch_add(1, std::memory_order_relaxed) + 1;
    std::uint64_t n = tl_call_tag_count++;
    process_control* running = running_here();
    if (!running) [[unlikely]]
        running = &require_process("call"); // throws not_in_process
    process_control& p = *running;
    handle_signals(p);
    return {
        &p, pid(p.rt->node, p.number, p.serial.load(std::memory_order_relaxed), p.rt->creation),
        p.messages.set_mark(),
        ref(p.rt->node, p.rt->creation,
            {std::uint32_t(n & 0x3ffff), std::uint32_t(n >> 18), 0x80000000u | (t & 0x7fffffffu)})};
}

namespace {
// The process `p` names when it is of `self`'s runtime (null otherwise, or when gone); from a
// scheduler thread inside a time slice (process_table.hpp).
inline process_control* local_process(process_control& self, const pid& p) noexcept {
    runtime_impl& rt = *self.rt;
    if (!rt.owns(p)) return nullptr;
    process_control* c = rt.table.at(p.number());
    return c && c->serial.load(std::memory_order_relaxed) == p.serial() ? c : nullptr;
}

// A call signal taken in by its sender, for a server that waits softly on the sender's
// scheduler with nothing queued before it (as deliver_soft hands over a message): only this
// thread can run the server, so the sender does what the server would do with the signal (its
// record of the caller's monitor, then the request into its mailbox) and wakes it. Nothing can
// be overtaken: the inbox is empty. No locked instruction on either side (the server's inbox
// is neither pushed to nor emptied). False, with nothing changed, when that does not hold.
bool take_in_call_here(process_control& caller, const pid& target, call_signal& s) noexcept {
    scheduler* here = caller.sched; // the caller runs: its scheduler is this thread's
    process_control* t = local_process(caller, target);
    if (!t || t->soft_on.load(std::memory_order_relaxed) != here ||
        t->inbox.load(std::memory_order_relaxed) != inbox_state::empty || t->exiting)
        return false;
    try {
        add_call_in(*t, s.request->slot.get(), s.request->tag, s.request->caller);
    } catch (...) {
        return false; // out of memory: the usual way (unchanged: the record was not added)
    }
    t->messages.push_back(std::exchange(s.message, nullptr));
    here->wake_soft(t);
    return true;
}
} // namespace

void detail::send_call_signal(process_control& p, const pid& target, envelope_ptr s) {
    auto& signal = static_cast<call_signal&>(*s);
    const from& f = *signal.request;
    const ref id = f.tag; // the signal may be gone after the send
    add_call_out(p, f.slot.get(), id, target);
    if (take_in_call_here(p, target, signal)) {
        // The signal's destroy would have nothing left to do (the message is in the mailbox, and
        // the signal's storage is the call's block): no call to it.
        (void)s.release();
        count_reduction(p);
        return;
    }
    if (!send_signal(*p.rt, target, std::move(s))) {
        // No such process: DOWN noproc, queued behind what is already there (as monitor()).
        p.push(make_down_signal({id, target, exit_reason::noproc(), atom()}).release());
    }
    count_reduction(p);
}

// --- The records of calls' monitors ------------------------------------------------------

void detail::call_list::grow() {
    std::size_t cap = capacity_ ? capacity_ * 2 : 4;
    auto fresh = std::make_unique<call_monitor[]>(cap);
    for (std::size_t i = 0; i < size_; ++i)
        fresh[i] = items_[i];
    items_ = std::move(fresh);
    capacity_ = cap;
}

void detail::clear_calls_in(process_control& p) noexcept {
    if (!p.signals) return;
    auto& v = p.signals->calls_in;
    count_monitors(p, -std::int64_t(v.size()));
    for (const call_monitor& c : v) {
        c.slot->server_index.store(call_slot::no_index, std::memory_order_relaxed);
        release_hold(c.slot, c.slot->server_hold);
    }
    v.clear();
}

std::size_t detail::find_call_out(const process_control& p, const ref& tag) noexcept {
    if (!p.signals) return npos;
    const auto& v = p.signals->calls_out;
    for (std::size_t i = 0; i < v.size(); ++i)
        if (v[i].tag == tag) return i;
    return npos;
}

envelope_ptr detail::call_demonitor_signal(const pid& self, const call_monitor& c) {
    auto* s = new monitor_signal(self, c.tag, signal_kind::demonitor);
    if (c.slot->caller_hold) {
        c.slot->caller_hold = 0; // the record's owner moves to the signal
        s->call = slot_ref::adopt(c.slot);
    } else {
        c.slot->refs.fetch_add(1, std::memory_order_relaxed);
        s->call = slot_ref::adopt(c.slot);
    }
    return envelope_ptr(s);
}

void detail::drop_call_out(process_control& p, std::size_t i) noexcept {
    const call_monitor c = p.signals->calls_out[i];
    envelope_ptr signal;
    try {
        signal = call_demonitor_signal(p.self_pid(), c);
    } catch (...) {
        // Out of memory: the server keeps the record until it replies or ends.
    }
    remove_call_out(p, i);
    if (signal) send_signal(*p.rt, c.other, std::move(signal));
}

ERLCPP_READS_THREAD bool detail::drop_monitor_on_self(call_slot& slot) noexcept {
    process_control* p = running_here();
    return p && remove_call_in(*p, &slot);
}

ERLCPP_READS_THREAD bool detail::send_sole_reply(const pid& caller, call_slot& slot,
                                                 envelope* reply, bool& demonitored) {
    scheduler* here = tl_scheduler; // read once, before anything can suspend
    process_control* self = here ? here->running : nullptr;
    if (self) {
        process_control* c = local_process(*self, caller);
        if (c && c->soft_on.load(std::memory_order_relaxed) == here &&
            c->inbox.load(std::memory_order_relaxed) == inbox_state::empty) {
            // The caller waits softly here with nothing queued before the reply (deliver_soft).
            if (slot.state.load(std::memory_order_relaxed) != call_slot::waiting) {
                reply->destroy();
                return false;
            }
            slot.state.store(call_slot::replied, std::memory_order_relaxed);
            demonitored = remove_call_in(*self, &slot);
            c->messages.push_back(reply);
            here->wake_soft(c);
            if (--self->reductions <= 0) [[unlikely]]
                yield_spent(*self);
            return true;
        }
    }
    envelope_ptr e(reply);
    if (!slot.claim()) return false;
    demonitored = self && remove_call_in(*self, &slot);
    deliver(caller, e.release());
    return true;
}

ERLCPP_READS_THREAD void detail::release_request_owner(call_slot* slot,
                                                       const pid& caller) noexcept {
    if (slot->refs.load(std::memory_order_acquire) == 2) {
        scheduler* here = tl_scheduler;
        process_control* self = here ? here->running : nullptr;
        process_control* c = self ? local_process(*self, caller) : nullptr;
        // (caller_index is the caller's: read only once the caller is known to be held here)
        if (c && (c->soft_on.load(std::memory_order_relaxed) == here || here->holds(c)) &&
            slot->caller_index != call_slot::no_index) {
            slot->refs.store(1, std::memory_order_relaxed);
            return;
        }
    }
    slot_ref::drop_owner(slot);
}

ERLCPP_READS_THREAD void detail::forget_monitor(call_slot& slot) noexcept {
    process_control* p = running_here();
    if (!p || !p->signals) return;
    std::uint32_t i = slot.caller_index;
    if (i < p->signals->calls_out.size() && p->signals->calls_out[i].slot == &slot)
        remove_call_out(*p, i);
}

void detail::end_call_monitor(call_slot& slot, const ref& tag) {
    process_control* p = current_process();
    if (!p) return;
    handle_signals(*p);
    if (p->signals) {
        std::uint32_t i = slot.caller_index;
        if (i < p->signals->calls_out.size() && p->signals->calls_out[i].slot == &slot) {
            drop_call_out(*p, i);
            flush_down(*p, tag);
            return;
        }
    }
    // No call record: the call's monitor is gone already, or it is a plain monitor (a request
    // to a name that nobody had).
    demonitor(tag, demonitor_option::flush);
}

} // namespace erl
