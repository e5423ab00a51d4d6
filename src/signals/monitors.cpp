// monitor, demonitor.
#include <erl/detail/call_signal.hpp>
#include <erl/monitor.hpp>
#include <erl/registry.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
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
        }
    }
    if (option == demonitor_option::flush) {
        for (envelope* e = p.messages.front(); e;) {
            envelope* next = e->next;
            if (e->type == type_key_of<down_msg>() &&
                static_cast<message_envelope<down_msg>*>(e)->value.id == id) {
                p.messages.remove(e);
                e->destroy(e);
            }
            e = next;
        }
    }
    return active;
}

void detail::send_call_signal(const pid& target, envelope_ptr s) {
    auto& p = require_process("call");
    const ref id = *static_cast<call_signal&>(*s).id;
    signals_of(p).monitoring.emplace(id, target);
    count_monitors(p, 1);
    if (!send_signal(*p.rt, target, std::move(s))) {
        // No such process: DOWN noproc, queued behind what is already there (as monitor()).
        p.push(make_down_signal({id, target, exit_reason::noproc(), atom()}).release());
    }
    count_reduction(p);
}

bool detail::drop_monitor_on_self(const ref& id) noexcept {
    process_control* p = current_process();
    if (!p || !p->signals || !p->signals->monitored_by.erase(id)) return false;
    count_monitors(*p, -1);
    return true;
}

void detail::forget_monitor(const ref& id) noexcept {
    process_control* p = current_process();
    if (p && p->signals && p->signals->monitoring.erase(id)) count_monitors(*p, -1);
}

} // namespace erl
