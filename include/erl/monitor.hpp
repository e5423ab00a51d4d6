// Monitors: one-way watches that report a process's end as a down_msg.
#pragma once

#include <erl/atom.hpp>
#include <erl/exit_reason.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>

namespace erl {

// Erlang's {'DOWN', Ref, process, Object, Reason}. `name` is set (and `process` may be null) when
// the monitor was taken on a registered name.
struct down_msg {
    ref id;
    pid process;
    exit_reason reason;
    atom name;
};

// Watches `target`; when it ends, or if it has already ended (reason noproc), the caller gets a
// down_msg carrying the returned ref. Any number of monitors per pair.
ref monitor(const pid& target);
// Watches the process registered as `name` (noproc at once when there is none).
ref monitor(atom name);

enum class demonitor_option { none, flush };
// Removes the monitor; with flush, also removes its down_msg if one was already delivered.
// Returns true when the monitor was still active.
bool demonitor(const ref& monitor_ref, demonitor_option option = demonitor_option::none);

} // namespace erl

template <>
struct fmt::formatter<erl::down_msg> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::down_msg& m, FormatContext& ctx) const -> decltype(ctx.out()) {
        if (m.name != erl::atom())
            return fmt::format_to(ctx.out(), "{{'DOWN',{},process,{},{}}}", m.id, m.name, m.reason);
        return fmt::format_to(ctx.out(), "{{'DOWN',{},process,{},{}}}", m.id, m.process, m.reason);
    }
};
