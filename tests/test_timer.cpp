#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <chrono>

using namespace std::chrono_literals;

TEST_CASE("send_after delivers after the delay / cancel_timer says whether it was pending",
          "[timer]") {
    erl::runtime rt({.schedulers = 2});
    bool got = false, cancelled = false, late_cancel = true, nothing = false;
    std::chrono::steady_clock::duration waited{};
    rt.run([&] {
        auto t0 = std::chrono::steady_clock::now();
        erl::send_after(30ms, erl::self(), 1);
        got = erl::receive([](int v) { return v == 1; });
        waited = std::chrono::steady_clock::now() - t0;

        erl::ref t = erl::send_after(50ms, erl::self(), 2);
        cancelled = erl::cancel_timer(t);
        late_cancel = erl::cancel_timer(t);
        nothing = erl::receive([](int) { return false; }, erl::after(100ms, [] { return true; }));

        erl::ref t2 = erl::send_after(1ms, erl::self(), 3);
        erl::receive([](int) {});
        CHECK_FALSE(erl::cancel_timer(t2)); // already fired
    });
    CHECK(got);
    CHECK(waited >= 30ms);
    CHECK(cancelled);
    CHECK_FALSE(late_cancel);
    CHECK(nothing);
    CHECK(rt.statistics().pending_timers == 0);
}

TEST_CASE("tens of thousands of pending timers fire in deadline order", "[timer]") {
    erl::runtime rt({.schedulers = 1});
    bool ordered = true;
    rt.run([&] {
        using clock = std::chrono::steady_clock;
        const int n = 20000;
        // Delays 1 ms apart (in a shuffled order); the value is the delay in ms.
        auto delay_of = [](int i) { return 100 + (i * 7919) % 400; };
        std::vector<erl::ref> refs;
        auto t0 = clock::now();
        for (int i = 0; i < n; ++i)
            refs.push_back(
                erl::send_after(std::chrono::milliseconds(delay_of(i)), erl::self(), delay_of(i)));
        CHECK(rt.statistics().pending_timers == std::size_t(n));
        int cancelled = 0;
        for (int i = 0; i < n; i += 2)
            cancelled += erl::cancel_timer(refs[i]) ? 1 : 0;
        auto spread = std::chrono::ceil<std::chrono::milliseconds>(clock::now() - t0).count();
        CHECK(cancelled == n / 2);
        // Each deadline is (insert time + delay), the insert times lie within `spread`, so two
        // timers whose delays differ by more than that must fire in delay order.
        int last = -1;
        for (int i = 0; i < n / 2; ++i) {
            int d = erl::receive([](int v) { return v; });
            if (d + spread < last) ordered = false;
            last = std::max(last, d);
        }
    });
    CHECK(ordered);
    CHECK(rt.statistics().pending_timers == 0);
}

TEST_CASE("a dead process leaves no timers behind", "[timer]") {
    erl::runtime rt({.schedulers = 1});
    rt.run([&] {
        erl::pid c = erl::spawn([] { erl::receive([](int) {}); });
        for (int i = 0; i < 100; ++i)
            erl::send_after(1h, c, i);
        CHECK(rt.statistics().pending_timers == 100);
        erl::monitor(c);
        erl::exit(c, erl::exit_reason::kill());
        erl::receive([](erl::down_msg) {});
    });
    CHECK(rt.statistics().pending_timers == 0);
}

TEST_CASE("send_after and cancel_timer from a plain thread", "[timer]") {
    erl::runtime rt({.schedulers = 1});
    int got = 0;
    erl::pid p = rt.spawn([&] { got = erl::receive([](int v) { return v; }); });
    erl::ref keep = erl::send_after(1h, p, 1);
    CHECK(erl::cancel_timer(keep));
    erl::send_after(5ms, p, 2);
    rt.wait();
    CHECK(got == 2);
}
