// erl::application — runs a supervision tree as a program: starts the top supervisor in its own
// runtime, blocks until the tree ends, turns SIGINT/SIGTERM into an orderly shutdown and
// returns an exit code.
#pragma once

#include <functional>
#include <memory>

#include <erl/exit_reason.hpp>
#include <erl/runtime.hpp>
#include <erl/supervisor.hpp>

namespace erl {

struct application_options {
    runtime_options runtime{};
    // Turn SIGINT and SIGTERM into stop() while run() runs (the previous handlers come back
    // afterwards). Only one application at a time may handle signals.
    bool handle_signals = true;
    // The exit code run() returns, from the top supervisor's exit reason and whether the stop
    // was asked for (stop() or a signal). Unset: 0 when asked for or normal, 1 otherwise (a
    // failed start, a crash, too many restarts, an auto_shutdown of the top supervisor).
    std::function<int(const exit_reason& reason, bool requested)> exit_code{};
};

class application {
  public:
    // `start` runs in the application's process and must start_link the top supervisor, e.g.
    // [] { return erl::supervisor::start_link(flags, children); }.
    explicit application(std::function<supervisor::start_result()> start,
                         application_options options = {});
    ~application();
    application(const application&) = delete;
    application& operator=(const application&) = delete;

    // Starts the runtime and the tree, blocks until the top supervisor ends (by itself or
    // through stop()), shuts the runtime down and returns the exit code. The tree stops in
    // order: the top supervisor gets exit(shutdown) from its parent, as OTP's application
    // master does, and stops its children in reverse start order, each with its own shutdown.
    int run();

    // Asks a running (or about to run) application to stop. Safe from any thread and from a
    // signal handler; does nothing once the application has ended.
    void stop() noexcept;

    // After run(): the top supervisor's exit reason (or the start error).
    const exit_reason& reason() const noexcept;

  private:
    struct state;
    std::unique_ptr<state> state_;
};

} // namespace erl
