// The compiled core's entry points that erlcpp's templates call. Not for users.
#pragma once

#include <chrono>
#include <cstddef>

#include <erl/detail/envelope.hpp>
#include <erl/detail/message_list.hpp>
#include <erl/exit_reason.hpp>
#include <erl/pid.hpp>

namespace erl {
struct spawn_options;
class runtime;
} // namespace erl

namespace erl {
class term;
}

namespace erl::detail {

struct process_control;
struct runtime_impl;

using clock = std::chrono::steady_clock;

// The calling process, or nullptr on a thread that is not running a process.
process_control* current_process() noexcept;
// The calling process; throws erl::not_in_process naming `operation` when there is none.
process_control& require_process(const char* operation);

message_list& messages_of(process_control& p) noexcept;
// What a receive starts with, in one call: the calling process (or erl::not_in_process) with its
// pending signals handled, and its message list.
struct receive_scope {
    process_control* self;
    message_list* box;
};
receive_scope begin_receive();
// Takes pending signals into the process: messages join the message list, other signals act
// (an exit signal may end the process here, by throwing its exit).
void handle_signals(process_control& p);
// Suspends the process until a signal arrives or `deadline` passes (never, when
// `has_deadline` is false), then handles signals.
void wait_signals(process_control& p, clock::time_point deadline, bool has_deadline);
// Counts one reduction; switches the process out when its time slice is spent.
void count_reduction(process_control& p);

// Sends an envelope to a pid of any runtime in the program, from any thread.
// How a message envelope becomes an erl::term when it must leave the program (a pid of another
// node): set by erl::send for types with a term conversion, null for the others.
using message_to_term = term (*)(envelope& e);
// Takes ownership of `e`.
void deliver(const pid& to, envelope* e, message_to_term convert = nullptr);

// What spawn needs to build a process's function: first in a staging block, then (when the
// process first runs and has a stack) at the top of its stack.
struct closure_ops {
    std::size_t size;
    std::size_t align;
    void (*construct)(void* where, void* source); // moves the arguments from `source`
    void (*run)(void* self);
    void (*destroy)(void* self) noexcept;
    void* source;
    // The move that `construct` makes cannot throw, so the closure can move to the stack when
    // the process starts; otherwise it runs where it was staged.
    bool nothrow_move;
};
// `rt` null: the caller's runtime (the calling process must exist).
pid spawn_process(runtime_impl* rt, const spawn_options& options, const closure_ops& ops);

// Thrown through a process's stack to end it with a reason; deliberately not a std::exception
// so that `catch (const std::exception&)` in user code does not swallow an exit.
struct exit_exception {
    exit_reason reason;
};

} // namespace erl::detail
