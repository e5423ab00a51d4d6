// White-box: the schedulers' quiescence clocks (src/process/process_table.hpp), which decide
// when the slot of an ended process may be reused.
#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "process/process_table.hpp"
#include "scheduler/scheduler.hpp"

using namespace std::chrono_literals;

TEST_CASE("a scheduler that slept is online again when it runs a process",
          "[scheduler][quiescence]") {
    // A sleeping scheduler counts as quiescent (offline): slots retired meanwhile need not wait
    // for it. The process it wakes for must not run while it still counts as such, or a slot
    // that process looks up could be reused under it.
    erl::runtime rt({.schedulers = 1});
    std::atomic<int> offline_runs{0}, seen{0};
    erl::pid waiter = rt.spawn([&] {
        for (int i = 0; i < 20; ++i) {
            erl::receive([](int) {}); // woken by a plain thread while its scheduler sleeps
            auto* s = erl::detail::current_scheduler();
            if (s->quiescent.load() & erl::detail::offline_bit) ++offline_runs;
            ++seen;
        }
    });
    for (int i = 0; i < 20; ++i) {
        std::this_thread::sleep_for(5ms); // the scheduler has nothing to do: it sleeps
        erl::send(waiter, i);
        while (seen.load() <= i)
            std::this_thread::yield();
    }
    rt.wait();
    CHECK(seen.load() == 20);
    CHECK(offline_runs.load() == 0);
}
