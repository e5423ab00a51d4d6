#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include "context/stack_pool.hpp"
#include "process/process_control.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>

namespace {

__attribute__((noinline)) int recurse_forever(int n) {
    volatile char frame[512];
    if (n < 0) return 0; // never: keeps the compiler from calling this recursion infinite
    frame[0] = char(n);
    frame[511] = char(n);
    return recurse_forever(n + 1) + frame[0] + frame[511];
}

// Runs `body` in a forked child; returns its wait status and what it wrote to stderr.
template <typename Body>
std::pair<int, std::string> in_child(Body body) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // An abort is the outcome some tests expect: not Catch's handler for it, which is not
        // safe in a signal handler (TSan reports it and changes the exit status).
        std::signal(SIGABRT, SIG_DFL);
        ::dup2(fds[1], 2);
        ::close(fds[0]);
        body();
        std::_Exit(0);
    }
    ::close(fds[1]);
    std::string err;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
        err.append(buf, std::size_t(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    return {status, err};
}

} // namespace

TEST_CASE("a stack overflow names the process before the program dies", "[stack][overflow]") {
    auto [status, err] = in_child([] {
        erl::runtime rt({.schedulers = 1});
        rt.run([] {
            erl::register_name(erl::atom("deep_thinker"), erl::self());
            recurse_forever(0);
        });
    });
    INFO("child stderr: " << err);
    CHECK(WIFSIGNALED(status));
    CHECK(err.find("overflowed its stack") != std::string::npos);
    CHECK(err.find("deep_thinker") != std::string::npos);
    CHECK(err.find("<0.") != std::string::npos);
}

TEST_CASE("stacks are recycled: spawn and exit many times with little memory", "[stack][recycle]") {
    erl::runtime rt({.schedulers = 1});
    int done = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        for (int round = 0; round < 100; ++round) {
            for (int i = 0; i < 1000; ++i)
                erl::spawn([me] { erl::send(me, 1); });
            for (int i = 0; i < 1000; ++i)
                done += erl::receive([](int v) { return v; });
        }
    });
    CHECK(done == 100000);
}

// Where neither MADV_GUARD_INSTALL nor mprotect can guard a stack (old kernels, the mprotect
// budget spent), a canary at its lowest bytes is checked at every switch. These run in a child:
// the switch to canaries is program-wide.
TEST_CASE("stacks with a canary instead of a guard page run processes as usual",
          "[stack][canary]") {
    auto [status, err] = in_child([] {
        erl::detail::stack_pool::use_canaries_for_new_stacks();
        erl::runtime rt({.schedulers = 1});
        bool guarded_by_canary = false;
        int sum = 0;
        rt.run([&] {
            auto* self = erl::detail::current_process();
            guarded_by_canary =
                self->canary_guarded && self->stack.guard == erl::detail::guard_kind::canary;
            erl::pid me = erl::self();
            for (int i = 0; i < 100; ++i)
                erl::spawn([me, i] {
                    erl::yield();
                    erl::send(me, i);
                });
            for (int i = 0; i < 100; ++i)
                sum += erl::receive([](int v) { return v; });
        });
        std::_Exit(guarded_by_canary && sum == 4950 ? 0 : 3);
    });
    INFO("child stderr: " << err);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a destroyed stack canary stops the program at the process's next switch",
          "[stack][canary]") {
    auto [status, err] = in_child([] {
        erl::detail::stack_pool::use_canaries_for_new_stacks();
        erl::runtime rt({.schedulers = 1});
        rt.run([] {
            erl::register_name(erl::atom("careless"), erl::self());
            // What an overflow into the unguarded memory below the stack does first.
            auto* self = erl::detail::current_process();
            auto* low = reinterpret_cast<volatile char*>(self->stack.low);
            *low = char(*low ^ 0x5a);
            erl::yield();
        });
    });
    INFO("child stderr: " << err);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    CHECK(err.find("stack canary destroyed") != std::string::npos);
    CHECK(err.find("careless") != std::string::npos);
}
