// Links and exit signals: link, unlink, spawn_link, exit/2, trap_exit.
#pragma once

#include <utility>

#include <erl/exit_reason.hpp>
#include <erl/pid.hpp>
#include <erl/process.hpp>

namespace erl {

// What a process that traps exits receives instead of dying: Erlang's {'EXIT', From, Reason}.
struct exit_msg {
    pid from;
    exit_reason reason;
};

// Links the caller and `other` (bidirectional; at most one link per pair; linking to oneself does
// nothing). When either ends with reason R, the other gets an exit signal (from, R). If `other`
// does not exist, the caller gets an exit signal with reason noproc (a message when trapping).
void link(const pid& other);
// Removes the link. After unlink returns, no exit signal caused by the link reaches the caller.
void unlink(const pid& other);

// spawn + link as one step: the link exists before the child runs.
template <typename F, typename... Args>
pid spawn_link(F&& fn, Args&&... args) {
    spawn_options o;
    o.link = true;
    return spawn(o, std::forward<F>(fn), std::forward<Args>(args)...);
}

// Erlang's exit/2: sends an exit signal with `reason` to `target`. `kill` cannot be trapped and
// ends the target with reason `killed`; `normal` is ignored by a process that does not trap exits
// (unless it is the caller itself, which then ends with reason normal); a trapping target gets an
// exit_msg. Works from plain threads too.
void exit(const pid& target, exit_reason reason);

enum class process_flag_t { trap_exit };
inline constexpr process_flag_t trap_exit = process_flag_t::trap_exit;

// process_flag(trap_exit, true): exit signals (but `kill` from exit/2) arrive as exit_msg
// messages instead of ending the process. Returns the previous value.
bool process_flag(process_flag_t flag, bool value);

} // namespace erl

template <>
struct fmt::formatter<erl::exit_msg> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::exit_msg& m, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::format_to(ctx.out(), "{{'EXIT',{},{}}}", m.from, m.reason);
    }
};
