// Links, exit signals, monitors and a process's end, with Erlang's semantics (see
// docs/semantics.md for the signal matrix and where erlcpp differs).
#include "signals/signals.hpp"

#include <utility>

#include <erl/detail/call_signal.hpp>
#include <erl/gen.hpp>
#include <erl/link.hpp>
#include <erl/monitor.hpp>
#include <erl/process.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "scheduler/scheduler.hpp"

namespace erl::detail {

signal_state& make_signals(process_control& p) {
    p.signals = std::make_unique<signal_state>();
    return *p.signals;
}

namespace {

void append_message(process_control& p, envelope_ptr msg) {
    p.messages.push_back(msg.release());
}

template <typename T>
void append_message(process_control& p, T value) {
    append_message(p, make_message<T>(std::move(value)));
}

// A DOWN reaches the watcher: whether it still had the monitor (it forgets it now).
bool forget_down(process_control& p, const ref& id) noexcept {
    if (!p.signals) return false;
    if (p.signals->monitoring.erase(id)) {
        count_monitors(p, -1);
        return true;
    }
    std::size_t i = find_call_out(p, id);
    if (i == npos) return false;
    remove_call_out(p, i);
    return true;
}

void decide_exit(process_control& p, exit_reason reason) {
    if (p.exiting) return; // the first decided exit wins
    p.exiting = true;
    p.exit_with = std::move(reason);
}

void handle_exit(process_control& p, exit_signal& s) {
    const pid self = p.self_pid();
    if (s.via_link) {
        // An exit through a link counts only while the link exists (unlink cancels it).
        if (!p.signals || p.signals->links.erase(s.from) == 0) return;
        p.rt->link_count.fetch_sub(1, std::memory_order_relaxed);
        if (p.trap_exit) {
            append_message(p, exit_msg{s.from, std::move(s.reason)});
        } else if (!s.reason.is_normal()) {
            decide_exit(p, std::move(s.reason));
        }
        return;
    }
    // exit/2
    if (s.reason.tag() == atoms::kill && !s.reason.has_detail()) {
        decide_exit(p, exit_reason::killed()); // untrappable
    } else if (p.trap_exit) {
        append_message(p, exit_msg{s.from, std::move(s.reason)});
    } else if (s.reason.is_normal()) {
        if (s.from == self) decide_exit(p, exit_reason::normal());
    } else {
        decide_exit(p, std::move(s.reason));
    }
}

} // namespace

void handle_signal(process_control& p, envelope* raw) {
    envelope_ptr e(raw);
    runtime_impl& rt = *p.rt;
    switch (e->kind()) {
    case signal_kind::exit:
        handle_exit(p, static_cast<exit_signal&>(*e));
        break;
    case signal_kind::link: {
        auto& s = static_cast<link_signal&>(*e);
        if (signals_of(p).links.insert(s.from).second)
            rt.link_count.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    case signal_kind::unlink: {
        auto& s = static_cast<link_signal&>(*e);
        if (p.signals && p.signals->links.erase(s.from))
            rt.link_count.fetch_sub(1, std::memory_order_relaxed);
        break;
    }
    case signal_kind::monitor: {
        auto& s = static_cast<monitor_signal&>(*e);
        if (signals_of(p).monitored_by.emplace(s.id, s.from)) count_monitors(p, 1);
        break;
    }
    case signal_kind::call: {
        // The caller's monitor first, then its request joins the mailbox.
        auto& s = static_cast<call_signal&>(*e);
        add_call_in(p, s.request->slot.get(), s.request->tag, s.request->caller);
        p.messages.push_back(std::exchange(s.message, nullptr));
        break;
    }
    case signal_kind::demonitor: {
        auto& s = static_cast<monitor_signal&>(*e);
        if (s.call)
            remove_call_in(p, s.call.get());
        else if (p.signals && p.signals->monitored_by.erase(s.id))
            count_monitors(p, -1);
        break;
    }
    case signal_kind::down: {
        auto& m = static_cast<message_envelope<down_msg>&>(*e).value;
        // A DOWN for a monitor the process has dropped (demonitor raced with the death) is
        // not delivered, as in Erlang.
        if (!forget_down(p, m.id)) break;
        e->set_kind(signal_kind::message);
        p.messages.push_back(e.release());
        break;
    }
    case signal_kind::info:
        answer_info_request(p, *e);
        break;
    case signal_kind::wake:
        break;
    case signal_kind::adopt:
        own_resource(p, static_cast<adopt_signal&>(*e).resource);
        break;
    case signal_kind::message:
        p.messages.push_back(e.release());
        break;
    }
}

envelope_ptr make_down_signal(down_msg d) {
    auto e = make_message<down_msg>(std::move(d));
    e->set_kind(signal_kind::down);
    return e;
}

envelope_ptr make_wake_signal() {
    return envelope_ptr(new wake_signal);
}

void wake_process(process_control& p) noexcept {
    envelope* e;
    try {
        e = make_wake_signal().release();
    } catch (...) {
        // Out of memory: wake it directly. Only a waiter that is not parked yet can be missed
        // (one that waits softly on another scheduler), and its timeout (if any) still wakes it.
        wake_waiter(&p, current_scheduler());
        return;
    }
    scheduler* here = current_scheduler();
    if (here && p.soft_on.load(std::memory_order_relaxed) == here) {
        here->deliver_soft(&p, e, p.serial.load(std::memory_order_relaxed));
        return;
    }
    switch (p.push(e)) {
    case push_result::woke:
        make_ready(&p, here);
        break;
    case push_result::queued:
        note_if_soft(&p, here);
        break;
    case push_result::closed:
        e->destroy();
        break;
    }
}

void own_resource(process_control& p, owned_resource r) {
    auto& s = signals_of(p);
    if (s.resources.size() >= s.resources_checked) {
        const pid self = p.self_pid();
        std::erase_if(s.resources,
                      [&](const owned_resource& x) { return !x.held(*p.rt, x.id, self); });
        s.resources_checked = std::max<std::size_t>(8, s.resources.size() * 2);
    }
    s.resources.push_back(r);
}

void link_new_child(process_control& parent, process_control& child) {
    signals_of(parent).links.insert(child.self_pid());
    signals_of(child).links.insert(parent.self_pid());
    parent.rt->link_count.fetch_add(2, std::memory_order_relaxed);
}

namespace {

// A signal that reached a process after its end, answered on its behalf.
void answer_for_dead(runtime_impl& rt, const pid& dead, envelope_ptr e) {
    switch (e->kind()) {
    case signal_kind::link: {
        auto& s = static_cast<link_signal&>(*e);
        send_signal(rt, s.from, envelope_ptr(new exit_signal(dead, exit_reason::noproc(), true)));
        break;
    }
    case signal_kind::monitor: {
        auto& s = static_cast<monitor_signal&>(*e);
        send_signal(rt, s.from, make_down_signal({s.id, dead, exit_reason::noproc(), atom()}));
        break;
    }
    case signal_kind::call: { // the request is dropped with the signal
        auto& s = static_cast<call_signal&>(*e);
        send_signal(rt, s.request->caller,
                    make_down_signal({s.request->tag, dead, exit_reason::noproc(), atom()}));
        break;
    }
    case signal_kind::info: {
        answer_info_request_dead(*e);
        break;
    }
    default:
        break; // messages, exits, unlinks and demonitors to the dead are dropped
    }
}

} // namespace

void terminate_process(process_control& p, const exit_reason& reason) noexcept {
    runtime_impl& rt = *p.rt;
    // 1. Nothing more gets in. What was queued is answered as the dead answer.
    envelope* rest = p.close();
    // 2. The message queue goes.
    for (envelope* m = p.messages.release_all(); m;) {
        envelope* next = m->next;
        m->destroy();
        m = next;
    }
    // 3. The name goes, so that a restarted process can take it at once.
    if (p.name_text.load(std::memory_order_seq_cst)) {
        std::lock_guard lock(rt.names_mutex);
        if (p.has_name) rt.names.erase(p.registered_name);
        p.has_name = false;
        p.name_text.store(nullptr, std::memory_order_relaxed);
    }
    // Most processes end here: nothing was queued, and no link, monitor, resource or timer.
    if (!rest && !p.signals && p.timers_to_me.load(std::memory_order_relaxed) == 0) return;
    const pid self = p.self_pid();
    // 4. Signals queued before the end: a link or monitor made just before we died still gets
    // its noproc answer (so nobody waits for ever).
    while (rest) {
        envelope* next = rest->next;
        if (rest->kind() == signal_kind::link || rest->kind() == signal_kind::monitor ||
            rest->kind() == signal_kind::call || rest->kind() == signal_kind::info) {
            try {
                answer_for_dead(rt, self, envelope_ptr(rest));
            } catch (...) {
            }
        } else if (rest->kind() == signal_kind::unlink && p.signals) {
            auto* s = static_cast<link_signal*>(rest);
            if (p.signals->links.erase(s->from)) rt.link_count.fetch_sub(1);
            rest->destroy();
        } else if (rest->kind() == signal_kind::demonitor && p.signals) {
            auto* s = static_cast<monitor_signal*>(rest);
            if (s->call)
                remove_call_in(p, s->call.get());
            else if (p.signals->monitored_by.erase(s->id))
                count_monitors(p, -1);
            rest->destroy();
        } else if (rest->kind() == signal_kind::down && p.signals) {
            forget_down(p, static_cast<message_envelope<down_msg>*>(rest)->value.id);
            rest->destroy();
        } else if (rest->kind() == signal_kind::adopt) {
            // Handed to us as we died: released like the rest of what we own (below).
            auto& r = static_cast<adopt_signal*>(rest)->resource;
            r.release(rt, r.id, self);
            rest->destroy();
        } else if (rest->kind() == signal_kind::exit && p.signals) {
            auto* s = static_cast<exit_signal*>(rest);
            if (s->via_link && p.signals->links.erase(s->from)) rt.link_count.fetch_sub(1);
            rest->destroy();
        } else {
            rest->destroy();
        }
        rest = next;
    }
    // 5. Timers aimed at us (before the DOWN and EXIT signals: who sees us dead sees them
    // gone). A timer set by a process that looked us up just before this is dropped when our
    // block is released (process_table::release).
    drop_timers_to(p);
    // 6. Links, monitors held on us, monitors we hold.
    if (p.signals) {
        auto& s = *p.signals;
        try {
            for (const pid& other : s.links)
                send_signal(rt, other, envelope_ptr(new exit_signal(self, reason, true)));
            s.monitored_by.for_each([&](const ref& id, const pid& watcher) {
                send_signal(rt, watcher, make_down_signal({id, self, reason, atom()}));
            });
            s.monitoring.for_each([&](const ref& id, const pid& target) {
                send_signal(rt, target,
                            envelope_ptr(new monitor_signal(self, id, signal_kind::demonitor)));
            });
            for (const call_monitor& c : s.calls_in)
                send_signal(rt, c.other, make_down_signal({c.tag, self, reason, atom()}));
            for (const call_monitor& c : s.calls_out)
                send_signal(rt, c.other, call_demonitor_signal(self, c));
        } catch (...) {
            // Out of memory while dying: the peers lose a signal, the runtime goes on.
        }
        clear_calls_in(p);
        while (!s.calls_out.empty())
            remove_call_out(p, s.calls_out.size() - 1);
        rt.link_count.fetch_sub(std::int64_t(s.links.size()), std::memory_order_relaxed);
        count_monitors(p, -std::int64_t(s.monitored_by.size() + s.monitoring.size()));
        s.links.clear();
        s.monitored_by.clear();
        s.monitoring.clear();
    }
    // 7. What we own (sockets) is closed.
    if (p.signals) {
        for (const owned_resource& r : p.signals->resources)
            r.release(rt, r.id, self);
        p.signals->resources.clear();
    }
}

} // namespace erl::detail
