#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {
struct tagged {
    int tag;
    int value;
};
} // namespace

TEST_CASE("messages from one sender arrive in send order", "[receive][ordering]") {
    erl::runtime rt({.schedulers = 2});
    std::vector<int> got;
    rt.run([&] {
        erl::pid me = erl::self();
        erl::spawn([me] {
            for (int i = 0; i < 10000; ++i)
                erl::send(me, i);
        });
        for (int i = 0; i < 10000; ++i)
            got.push_back(erl::receive([](int v) { return v; }));
    });
    REQUIRE(got.size() == 10000);
    for (int i = 0; i < 10000; ++i)
        REQUIRE(got[i] == i);
}

TEST_CASE("selective receive takes the first match and leaves the rest in order", "[receive]") {
    erl::runtime rt({.schedulers = 1});
    std::vector<std::string> log;
    rt.run([&] {
        erl::pid me = erl::self();
        erl::send(me, 1);
        erl::send(me, std::string("a"));
        erl::send(me, 2);
        erl::send(me, std::string("b"));
        erl::send(me, 3.5);
        // Only strings: "a" is taken although 1 is older.
        log.push_back(erl::receive([](std::string s) { return s; }));
        // Handlers are tried per message, oldest message first: 1 comes before "b".
        log.push_back(
            erl::receive([](std::string s) { return s; }, [](int i) { return std::to_string(i); }));
        log.push_back(erl::receive([](double d) { return std::to_string(int(d * 10)); }));
        log.push_back(erl::receive([](int i) { return std::to_string(i); }));
        log.push_back(erl::receive([](std::string s) { return s; }));
        log.push_back(erl::receive([](int i) { return std::to_string(i); },
                                   erl::after(0ms, [] { return std::string("empty"); })));
    });
    CHECK(log == std::vector<std::string>{"a", "1", "35", "2", "b", "empty"});
}

TEST_CASE("guards select by value", "[receive][guard]") {
    erl::runtime rt({.schedulers = 1});
    std::vector<int> got;
    rt.run([&] {
        erl::pid me = erl::self();
        for (int t : {1, 2, 3, 2, 1})
            erl::send(me, tagged{t, t * 10});
        for (int want : {3, 2, 2, 1, 1}) {
            got.push_back(erl::receive(erl::guard([want](const tagged& m) { return m.tag == want; },
                                                  [](tagged m) { return m.value; })));
        }
    });
    CHECK(got == std::vector<int>{30, 20, 20, 10, 10});
}

TEST_CASE("a catch-all handler sees any message", "[receive]") {
    erl::runtime rt({.schedulers = 1});
    int ints = 0, others = 0;
    rt.run([&] {
        erl::send(erl::self(), 5);
        erl::send(erl::self(), std::string("x"));
        for (int i = 0; i < 2; ++i)
            erl::receive([&](erl::any_message m) {
                if (int* v = m.get_if<int>()) {
                    ints += *v;
                } else {
                    ++others;
                }
            });
    });
    CHECK(ints == 5);
    CHECK(others == 1);
}

TEST_CASE("handlers may take messages by reference or rvalue reference", "[receive]") {
    erl::runtime rt({.schedulers = 1});
    std::string a, b, c;
    rt.run([&] {
        erl::send(erl::self(), std::string("one"));
        erl::send(erl::self(), std::string("two"));
        erl::send(erl::self(), std::string("three"));
        erl::receive([&](const std::string& s) { a = s; });
        erl::receive([&](std::string& s) { b = std::move(s); });
        erl::receive([&](std::string&& s) { c = std::move(s); });
    });
    CHECK(a == "one");
    CHECK(b == "two");
    CHECK(c == "three");
}

TEST_CASE("after fires on time and after(0) only polls", "[receive][timer]") {
    erl::runtime rt({.schedulers = 1});
    std::chrono::steady_clock::duration waited{}, polled{};
    bool timed_out = false, poll_empty = false;
    rt.run([&] {
        auto t0 = std::chrono::steady_clock::now();
        timed_out = erl::receive([](int) { return false; }, erl::after(50ms, [] { return true; }));
        waited = std::chrono::steady_clock::now() - t0;
        t0 = std::chrono::steady_clock::now();
        poll_empty = erl::receive([](int) { return false; }, erl::after(0ms, [] { return true; }));
        polled = std::chrono::steady_clock::now() - t0;
    });
    CHECK(timed_out);
    CHECK(waited >= 50ms);
    CHECK(poll_empty);
    CHECK(polled < 50ms); // a poll never waits (generous bound: machines are noisy)
}

TEST_CASE("a message that arrives before the timeout wins", "[receive][timer]") {
    erl::runtime rt({.schedulers = 2});
    int got = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        erl::spawn([me] {
            erl::sleep_for(10ms);
            erl::send(me, 9);
        });
        got = erl::receive([](int v) { return v; }, erl::after(5s, [] { return -1; }));
    });
    CHECK(got == 9);
}

TEST_CASE("sending to a dead process is a silent no-op", "[receive]") {
    erl::runtime rt({.schedulers = 1});
    bool ok = false;
    rt.run([&] {
        erl::pid child = erl::spawn([] {});
        auto ref = erl::monitor(child);
        erl::receive([](erl::down_msg) {});
        (void)ref;
        erl::send(child, 1);
        erl::send(child, std::string("still nothing"));
        ok = !erl::is_alive(child);
    });
    CHECK(ok);
}

TEST_CASE("a receive mark skips the backlog: waiting for one reply among 100k messages",
          "[receive][mark]") {
    erl::runtime rt({.schedulers = 1});
    int replies = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        for (int i = 0; i < 100000; ++i)
            erl::send(me, i);
        erl::pid server = erl::spawn([] {
            for (;;) {
                bool stop = erl::receive(
                    [](std::pair<erl::pid, erl::ref> req) {
                        erl::send(req.first, req.second);
                        return false;
                    },
                    [](std::string) { return true; });
                if (stop) return;
            }
        });
        for (int round = 0; round < 1000; ++round) {
            auto mark = erl::mark_mailbox();
            erl::ref r = erl::make_ref();
            erl::send(server, std::make_pair(me, r));
            replies += erl::receive(mark, erl::guard([r](const erl::ref& x) { return x == r; },
                                                     [](erl::ref) { return 1; }));
        }
        erl::send(server, std::string("stop"));
        // The backlog is still there, untouched and in order.
        for (int i = 0; i < 100000; ++i)
            REQUIRE(erl::receive([](int v) { return v; }) == i);
    });
    CHECK(replies == 1000);
}

TEST_CASE("receive outside a process is an error", "[receive]") {
    CHECK_THROWS_AS(erl::receive([](int) {}), erl::not_in_process);
}

TEST_CASE("erl::as receives term messages as C++ types", "[receive][term]") {
    erl::runtime rt({.schedulers = 1});
    std::vector<std::string> got;
    rt.run([&] {
        erl::pid me = erl::self();
        erl::send(me, erl::term::parse("{other, shape, here}"));
        erl::send(me, erl::term::parse("{7, <<\"seven\">>}"));
        // Only the term that converts is taken; the other stays, in its place.
        auto [n, s] = erl::receive(erl::as<std::tuple<int, std::string>>(
            [](std::tuple<int, std::string> t) { return t; }));
        got.push_back(fmt::format("{} {}", n, s));
        got.push_back(erl::receive([](const erl::term& t) { return t.to_string(); }));
        got.push_back(erl::receive(erl::as<int>([](int i) { return std::to_string(i); }),
                                   erl::after(0ms, [] { return std::string("none"); })));
    });
    CHECK(got == std::vector<std::string>{"7 seven", "{other,shape,here}", "none"});
}
