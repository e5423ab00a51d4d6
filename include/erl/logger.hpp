// The logger hook: where crash reports (and, later, supervisor reports) go.
#pragma once

#include <functional>
#include <string>

#include <fmt/format.h>

#include <erl/atom.hpp>
#include <erl/exit_reason.hpp>
#include <erl/pid.hpp>

namespace erl {

enum class log_level { debug, info, notice, warning, error, critical };

struct log_event {
    log_level level = log_level::info;
    // What kind of report: crash_report, supervisor_report, progress...; empty for plain logs.
    atom kind;
    pid process;        // who it is about (may be null)
    atom name;          // its registered name, '' if none
    exit_reason reason; // for crash and supervisor reports
    std::string text;   // the readable report
};

using log_handler = std::function<void(const log_event&)>;

// Installs `handler` for every runtime in the program and returns the previous one. The default
// handler writes each event to stderr. Handlers may be called from any scheduler thread at once,
// so they must be thread-safe; they must not block for long.
log_handler set_log_handler(log_handler handler);

// Sends an event to the current handler.
void log(const log_event& event);

} // namespace erl

template <>
struct fmt::formatter<erl::log_level> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(erl::log_level l, FormatContext& ctx) const -> decltype(ctx.out()) {
        static constexpr std::string_view names[] = {"debug",   "info",  "notice",
                                                     "warning", "error", "critical"};
        return fmt::formatter<std::string_view>::format(names[int(l)], ctx);
    }
};
