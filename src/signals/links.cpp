// link, unlink, exit/2, process_flag(trap_exit).
#include <erl/link.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl {

using namespace detail;

void link(const pid& other) {
    auto& p = require_process("link");
    handle_signals(p);
    const pid self = p.self_pid();
    if (other == self) return;
    auto& s = signals_of(p);
    if (!s.links.insert(other).second) return; // already linked
    p.rt->link_count.fetch_add(1, std::memory_order_relaxed);
    if (!send_signal(*p.rt, other, envelope_ptr(new link_signal(self, signal_kind::link)))) {
        // No such process: the link answers at once with an exit signal noproc, through our
        // own queue so it keeps its place after anything already there.
        p.push(new exit_signal(other, exit_reason::noproc(), true));
    }
    count_reduction(p);
}

void unlink(const pid& other) {
    auto& p = require_process("unlink");
    handle_signals(p);
    const pid self = p.self_pid();
    if (!p.signals || p.signals->links.erase(other) == 0) return;
    p.rt->link_count.fetch_sub(1, std::memory_order_relaxed);
    send_signal(*p.rt, other, envelope_ptr(new link_signal(self, signal_kind::unlink)));
    count_reduction(p);
}

void exit(const pid& target, exit_reason reason) {
    process_control* p = current_process();
    pid from = p ? p->self_pid() : pid();
    envelope_ptr signal(new exit_signal(from, std::move(reason), false));
    if (p) {
        send_signal(*p->rt, target, std::move(signal));
        // A signal to oneself acts before exit/2 returns, as in Erlang.
        if (target == from)
            handle_signals(*p);
        else
            count_reduction(*p);
        return;
    }
    if (target.is_local())
        with_runtime(target.creation(),
                     [&](runtime_impl& rt) { send_signal(rt, target, std::move(signal)); });
}

bool process_flag(process_flag_t flag, bool value) {
    auto& p = require_process("process_flag");
    switch (flag) {
    case process_flag_t::trap_exit: {
        bool old = p.trap_exit;
        p.trap_exit = value;
        return old;
    }
    }
    return false;
}

} // namespace erl
