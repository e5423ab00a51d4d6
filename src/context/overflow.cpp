#include "context/overflow.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "context/stack_pool.hpp"
#include "process/process_control.hpp"
#include "scheduler/scheduler.hpp"

namespace erl::detail {

namespace {

constexpr std::size_t altstack_bytes = 64 * 1024;
struct sigaction previous_segv;
struct sigaction previous_bus;

// async-signal-safe output: write(2) and hand-made number formatting only.
void put(const char* s) noexcept {
    auto n = std::strlen(s);
    while (n > 0) {
        ssize_t w = ::write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= std::size_t(w);
    }
}
void put_number(unsigned long v, int base = 10) noexcept {
    char buf[32];
    int i = 31;
    buf[i] = '\0';
    do {
        buf[--i] = "0123456789abcdef"[v % unsigned(base)];
        v /= unsigned(base);
    } while (v && i > 0);
    put(buf + i);
}

void report(const process_control* p, const void* addr) noexcept {
    put("erlcpp: process ");
    if (p) {
        put("<0.");
        put_number(p->number);
        put(".");
        put_number(p->serial.load(std::memory_order_relaxed));
        put(">");
        if (const char* name = p->name_text.load(std::memory_order_relaxed)) {
            put(" (registered as ");
            put(name);
            put(")");
        }
    } else {
        put("(unknown)");
    }
    put(" overflowed its stack");
    if (addr) {
        put(" (guard hit at 0x");
        put_number(reinterpret_cast<unsigned long>(addr), 16);
        put(")");
    }
    put("; raise spawn_options::stack_size for it\n");
}

void on_fault(int sig, siginfo_t* info, void* uctx) {
    const void* slot = nullptr;
    struct sigaction& prev = sig == SIGBUS ? previous_bus : previous_segv;
    if (stack_pool::find_guard_hit(info->si_addr, &slot)) {
        scheduler* s = current_scheduler();
        report(s ? s->running : nullptr, info->si_addr);
        // Fall through to the default action: the fault repeats and the program dies with a core
        // dump whose backtrace shows the overflow. Unwinding is impossible from here.
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(sig, &dfl, nullptr);
        return;
    }
    // Not ours: hand the fault to whoever handled it before (a sanitizer, the default).
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction) {
            prev.sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
        prev.sa_handler(sig);
        return;
    }
    ::sigaction(sig, &prev, nullptr);
}

} // namespace

void install_overflow_handler() noexcept {
    // Installed again whenever someone else took SIGSEGV over since (a test framework, a crash
    // reporter): faults that are not ours are still handed on to them.
    static std::mutex m;
    std::lock_guard lock(m);
    struct sigaction current {};
    ::sigaction(SIGSEGV, nullptr, &current);
    if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == &on_fault) return;
    struct sigaction sa {};
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGSEGV, &sa, &previous_segv);
    ::sigaction(SIGBUS, &sa, &previous_bus);
}

alternate_signal_stack::alternate_signal_stack() noexcept {
    memory_ = std::malloc(altstack_bytes);
    if (!memory_) return;
    stack_t ss{};
    ss.ss_sp = memory_;
    ss.ss_size = altstack_bytes;
    ss.ss_flags = 0;
    if (::sigaltstack(&ss, nullptr) != 0) {
        std::free(memory_);
        memory_ = nullptr;
    }
}

alternate_signal_stack::~alternate_signal_stack() {
    if (!memory_) return;
    stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    ::sigaltstack(&ss, nullptr);
    std::free(memory_);
}

void check_canary(const process_control& p) noexcept {
    if (std::memcmp(p.stack.low, &stack_canary, sizeof stack_canary) == 0) return;
    report(&p, nullptr);
    put("erlcpp: stack canary destroyed (this stack has no guard page); aborting\n");
    std::abort();
}

} // namespace erl::detail
