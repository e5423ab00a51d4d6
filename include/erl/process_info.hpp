// Process introspection: process_info, processes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include <erl/atom.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>

namespace erl {

enum class process_status { running, runnable, waiting, exiting };

struct process_info_t {
    pid self;
    process_status status = process_status::runnable;
    std::size_t message_queue_len = 0;
    std::vector<pid> links;
    std::vector<pid> monitors;     // processes this one monitors
    std::vector<pid> monitored_by; // processes that monitor this one
    std::optional<atom> registered_name;
    std::uint64_t reductions = 0;
    bool trap_exit = false;
    std::size_t stack_size = 0;       // virtual bytes
    std::size_t stack_high_water = 0; // deepest use seen at a suspension, bytes
};

// A snapshot of `p`, taken by `p` itself (like Erlang, the request is a signal that p answers
// when it next handles signals); nullopt when p is not alive. Call from a process.
std::optional<process_info_t> process_info(const pid& p);
// The pids of every live process of the caller's runtime.
std::vector<pid> processes();

} // namespace erl

template <>
struct fmt::formatter<erl::process_status> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(erl::process_status s, FormatContext& ctx) const -> decltype(ctx.out()) {
        static constexpr std::string_view names[] = {"running", "runnable", "waiting", "exiting"};
        return fmt::formatter<std::string_view>::format(names[int(s)], ctx);
    }
};
