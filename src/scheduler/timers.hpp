// send_after timers inside the runtime: what the schedulers, the process table and process
// exits need of them (erl/timer.hpp is the public side).
#pragma once

#include <cstddef>

#include <erl/detail/envelope.hpp>
#include <erl/pid.hpp>

namespace erl::detail {

struct runtime_impl;
struct process_control;
struct delivery_timer;
class scheduler;

// A send_after timer that fired: its message, for the scheduler to send once its wheel is
// unlocked.
struct fired_timer {
    pid dest;
    envelope_ptr message;
};

// Ends a send_after timer that `owner`'s wheel has just taken off (its lock held): the entry is
// freed and its message handed back.
fired_timer take_fired(runtime_impl& rt, scheduler& owner, delivery_timer& e) noexcept;

// Cancels every send_after timer aimed at `p` (which has ended). Cheap to call needlessly:
// it returns at once when p.timers_to_me is 0.
void drop_timers_to(process_control& p) noexcept;

// The runtime is going away (its schedulers have stopped): every pending timer's message goes.
void drop_all_timers(runtime_impl& rt) noexcept;

std::size_t pending_timers(const runtime_impl& rt) noexcept;

} // namespace erl::detail
