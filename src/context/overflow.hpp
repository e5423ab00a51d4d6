// Stack overflow: a process that runs into its guard page is named on stderr before the program
// dies with SIGSEGV (and a core dump with the overflowing backtrace). runtime-notes.md §5.
#pragma once

namespace erl::detail {

struct process_control;

// Installs the process-wide SIGSEGV/SIGBUS handler once.
void install_overflow_handler() noexcept;

// Each scheduler thread runs the handler on a stack of its own (the faulting stack is full).
class alternate_signal_stack {
  public:
    alternate_signal_stack() noexcept;
    ~alternate_signal_stack();
    alternate_signal_stack(const alternate_signal_stack&) = delete;
    alternate_signal_stack& operator=(const alternate_signal_stack&) = delete;

  private:
    void* memory_ = nullptr;
};

// For stacks without a guard page: the canary at the bottom must be intact after each run.
void check_canary(const process_control& p) noexcept;

} // namespace erl::detail
