#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>

using namespace std::chrono_literals;

namespace {
// Under ASan every stack also has shadow memory that an exception unpoisons page by page, and
// freed memory sits in quarantine; TSan keeps shadow memory and a fiber per process: resident
// sizes say nothing about the real build there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool memory_is_measurable = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool memory_is_measurable = false;
#else
constexpr bool memory_is_measurable = true;
#endif
#else
constexpr bool memory_is_measurable = true;
#endif

long rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}
struct counted {
    std::atomic<int>* n;
    ~counted() { ++*n; }
};
} // namespace

TEST_CASE("hibernate_with unwinds the stack and continues on the next message",
          "[process][hibernate]") {
    erl::runtime rt({.schedulers = 2});
    std::atomic<int> unwound{0};
    int got = 0;
    erl::exit_reason end;
    rt.run([&] {
        erl::pid me = erl::self();
        erl::pid p = erl::spawn([&, me] {
            counted c{&unwound};
            erl::send(me, std::string("hibernating"));
            erl::hibernate_with([me] {
                int v = erl::receive([](int v) { return v; });
                erl::send(me, v * 2);
            });
        });
        auto m = erl::monitor(p);
        erl::receive([](std::string) {});
        erl::sleep_for(5ms);
        CHECK(unwound == 1);              // the stack was unwound when it hibernated
        auto info = erl::process_info(p); // a signal wakes it; it answers, then waits again
        REQUIRE(info);
        erl::send(p, 21);
        got = erl::receive([](int v) { return v; });
        end = erl::receive(
            [m](erl::down_msg d) { return d.id == m ? d.reason : erl::exit_reason(); });
    });
    CHECK(got == 42);
    CHECK(end.is_normal());
}

TEST_CASE("a message already queued wakes a hibernating process at once", "[process][hibernate]") {
    erl::runtime rt({.schedulers = 1});
    int got = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        erl::spawn([me] {
            erl::send(erl::self(), 7);
            erl::receive([](erl::atom) {}, erl::after(0ms)); // moves 7 into the mailbox
            erl::hibernate_with([me] { erl::send(me, erl::receive([](int v) { return v; })); });
        });
        got = erl::receive([](int v) { return v; }, erl::after(5s, [] { return -1; }));
    });
    CHECK(got == 7);
}

TEST_CASE("hibernating again and being killed while hibernated", "[process][hibernate]") {
    erl::runtime rt({.schedulers = 1});
    erl::exit_reason why;
    int rounds = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        struct loop {
            erl::pid me;
            int n;
            void operator()() const {
                erl::receive([](int) {});
                erl::send(me, n);
                erl::hibernate_with(loop{me, n + 1});
            }
        };
        erl::pid p = erl::spawn([me] { erl::hibernate_with(loop{me, 1}); });
        auto m = erl::monitor(p);
        for (int i = 0; i < 100; ++i) {
            erl::send(p, 0);
            rounds = erl::receive([](int n) { return n; });
        }
        erl::exit(p, erl::exit_reason::kill());
        why = erl::receive(
            [m](erl::down_msg d) { return d.id == m ? d.reason : erl::exit_reason(); });
    });
    CHECK(rounds == 100);
    CHECK(why == erl::exit_reason::killed());
}

TEST_CASE("hibernated processes give their stack pages back", "[process][hibernate][memory]") {
    erl::runtime rt({.schedulers = 1});
    const int n = 20000;
    long awake_kib = 0, hibernated_kib = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        std::vector<erl::pid> ps;
        long before = rss_kib();
        for (int i = 0; i < n; ++i)
            ps.push_back(erl::spawn([me] {
                volatile char touch[6000]; // two pages of stack in use
                touch[0] = 1;
                touch[5999] = touch[0];
                if (touch[5999] != 1) erl::yield();
                erl::send(me, 0);
                erl::receive([](std::string) {});
                erl::hibernate_with([] { erl::receive([](int) {}); });
            }));
        for (int i = 0; i < n; ++i)
            erl::receive([](int) {});
        awake_kib = rss_kib() - before;
        for (auto& p : ps)
            erl::send(p, std::string("sleep"));
        erl::sleep_for(50ms);
        hibernated_kib = rss_kib() - before;
        for (auto& p : ps)
            erl::send(p, 1);
    });
    INFO("awake " << awake_kib * 1024 / n << " B/process, hibernated " << hibernated_kib * 1024 / n
                  << " B/process");
    if (memory_is_measurable) CHECK(hibernated_kib * 2 < awake_kib);
}

namespace {
struct sleepy : erl::gen_server<sleepy> {
    struct ping {
        using reply_type = int;
    };
    int n = 0;
    init_result init() { return ok(erl::hibernate); }
    call_result<int> handle_call(ping) { return reply(++n, erl::hibernate); }
};
} // namespace

TEST_CASE("hibernated gen_servers cost little memory and still answer",
          "[gen_server][hibernate][memory]") {
    erl::runtime rt({.schedulers = 1});
    const int n = 10000;
    long per_server = 0;
    int answers = 0;
    rt.run([&] {
        std::vector<erl::server<sleepy>> servers;
        long before = rss_kib();
        for (int i = 0; i < n; ++i)
            servers.push_back(erl::start<sleepy>());
        erl::sleep_for(20ms);
        per_server = (rss_kib() - before) * 1024 / n;
        for (auto& s : servers)
            answers += erl::call(s, sleepy::ping{});
        for (auto& s : servers)
            erl::stop(s);
    });
    INFO("bytes per hibernated server: " << per_server);
    if (memory_is_measurable) CHECK(per_server < 2048);
    CHECK(answers == n);
}
