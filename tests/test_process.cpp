#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {
struct ping {
    erl::pid from;
    int n;
};
struct pong {
    int n;
};
} // namespace

TEST_CASE("spawn / send and receive a typed message", "[process]") {
    erl::runtime rt({.schedulers = 1});
    std::atomic<int> got{0};
    rt.run([&] {
        erl::pid echo =
            erl::spawn([] { erl::receive([](ping p) { erl::send(p.from, pong{p.n + 1}); }); });
        erl::send(echo, ping{erl::self(), 41});
        got = erl::receive([](pong p) { return p.n; });
    });
    CHECK(got == 42);
    CHECK(rt.statistics().processes == 0);
}

TEST_CASE("main returning does not end its children / run waits for them", "[process]") {
    erl::runtime rt({.schedulers = 2});
    std::atomic<int> done{0};
    rt.run([&] {
        for (int i = 0; i < 10; ++i)
            erl::spawn([&] {
                erl::sleep_for(20ms);
                ++done;
            });
    });
    CHECK(done == 10);
}

TEST_CASE("spawn from a plain thread / send from a plain thread", "[process]") {
    erl::runtime rt({.schedulers = 2});
    std::atomic<int> got{0};
    erl::pid p = rt.spawn([&] { got = erl::receive([](int v) { return v; }); });
    CHECK(p.is_local());
    erl::send(p, 7);
    rt.wait();
    CHECK(got == 7);
}

TEST_CASE("self / is_alive and pid formatting", "[process]") {
    erl::runtime rt({.schedulers = 1});
    erl::pid inner;
    bool alive_inside = false;
    rt.run([&] {
        inner = erl::self();
        alive_inside = erl::is_alive(inner);
    });
    CHECK(alive_inside);
    CHECK_FALSE(erl::is_alive(inner));
    CHECK(fmt::format("{}", inner).starts_with("<0."));
    CHECK_THROWS_AS(erl::self(), erl::not_in_process);
}

TEST_CASE("receive returns the handler's result and after() returns its own", "[receive]") {
    erl::runtime rt({.schedulers = 1});
    std::string a, b;
    rt.run([&] {
        erl::send(erl::self(), std::string("hi"));
        a = erl::receive([](std::string s) { return s + "!"; },
                         erl::after(1s, [] { return std::string("late"); }));
        b = erl::receive([](std::string s) { return s; },
                         erl::after(10ms, [] { return std::string("timeout"); }));
    });
    CHECK(a == "hi!");
    CHECK(b == "timeout");
}

TEST_CASE("exceptions inside a process end only that process", "[process][crash]") {
    std::vector<erl::log_event> events;
    std::mutex m;
    auto old = erl::set_log_handler([&](const erl::log_event& e) {
        std::lock_guard l(m);
        events.push_back(e);
    });
    erl::runtime rt({.schedulers = 2});
    std::atomic<bool> survivor_ran{false};
    rt.run([&] {
        erl::spawn([] { throw std::runtime_error("boom"); });
        erl::sleep_for(10ms);
        erl::spawn([&] { survivor_ran = true; });
    });
    erl::set_log_handler(old);
    CHECK(survivor_ran);
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == erl::atom("crash_report"));
    CHECK(events[0].reason.is_exception());
    CHECK(events[0].reason.detail() == "boom");
    CHECK(events[0].text.find("boom") != std::string::npos);
}
