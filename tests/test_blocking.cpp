#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

// Spins (with short sleeps) until `done()` or the generous deadline; true when done() held.
// The deadline only keeps a broken build from hanging: no test depends on its length.
template <typename Done>
bool wait_until(Done done, std::chrono::seconds limit = 30s) {
    auto deadline = clock_type::now() + limit;
    while (!done()) {
        if (clock_type::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// The same from inside a process: lets the scheduler run others while it waits.
template <typename Done>
bool wait_in_process(Done done, std::chrono::seconds limit = 30s) {
    auto deadline = clock_type::now() + limit;
    while (!done()) {
        if (clock_type::now() > deadline) return false;
        erl::sleep_for(1ms);
    }
    return true;
}

struct disk_error : std::runtime_error {
    int code;
    explicit disk_error(int c) : std::runtime_error("disk error"), code(c) {}
};

// Counts the destructions of its last copy: a moved-from probe counts nothing.
struct drop_probe {
    std::atomic<int>* drops;
    bool live = true;
    explicit drop_probe(std::atomic<int>* d) : drops(d) {}
    drop_probe(drop_probe&& o) noexcept : drops(o.drops), live(std::exchange(o.live, false)) {}
    drop_probe(const drop_probe&) = delete;
    ~drop_probe() {
        if (live) drops->fetch_add(1);
    }
};

} // namespace

TEST_CASE("blocking returns the value fn returns and runs fn on another thread", "[blocking]") {
    erl::runtime rt({.schedulers = 1});
    int sum = 0;
    std::string text;
    bool other_thread = false;
    rt.run([&] {
        sum = erl::blocking([](int a, int b) { return a + b; }, 2, 40);
        std::string s = "abc";
        text = erl::blocking([](std::string x, const std::string& y) { return x + y; }, s, "def");
        auto here = std::this_thread::get_id();
        other_thread = erl::blocking([] { return std::this_thread::get_id(); }) != here;
    });
    CHECK(sum == 42);
    CHECK(text == "abcdef");
    CHECK(other_thread);
    // A job counts until its pool thread is done with it, a moment after blocking() returns.
    CHECK(wait_until([&] { return rt.statistics().blocking_jobs == 0; }));
}

TEST_CASE("blocking with a void function", "[blocking]") {
    erl::runtime rt({.schedulers = 1});
    std::atomic<bool> ran{false};
    rt.run([&] {
        erl::blocking([&ran] { ran = true; });
        static_assert(std::is_void_v<decltype(erl::blocking([] {}))>);
    });
    CHECK(ran);
}

TEST_CASE("blocking with move-only results and arguments and a reference result", "[blocking]") {
    erl::runtime rt({.schedulers = 1});
    int value = 0, from_arg = 0;
    int target = 5;
    bool same_object = false;
    rt.run([&] {
        std::unique_ptr<int> p = erl::blocking([] { return std::make_unique<int>(7); });
        value = *p;
        from_arg =
            erl::blocking([](std::unique_ptr<int> q) { return *q + 1; }, std::make_unique<int>(9));
        int& r = erl::blocking([&target]() -> int& { return target; });
        same_object = &r == &target;
    });
    CHECK(value == 7);
    CHECK(from_arg == 10);
    CHECK(same_object);
}

TEST_CASE("an exception from fn reaches the caller with its type", "[blocking]") {
    erl::runtime rt({.schedulers = 1});
    int code = 0;
    int thrown_int = 0;
    bool still_alive = false;
    rt.run([&] {
        try {
            erl::blocking([] { return disk_error(28).code; }); // returns, no throw
            erl::blocking([]() -> int { throw disk_error(28); });
        } catch (const disk_error& e) {
            code = e.code;
        }
        try {
            erl::blocking([] { throw 17; });
        } catch (int v) {
            thrown_int = v;
        }
        still_alive = erl::blocking([] { return true; });
    });
    CHECK(code == 28);
    CHECK(thrown_int == 17);
    CHECK(still_alive);
}

TEST_CASE("other processes keep the scheduler while blocking jobs wait", "[blocking]") {
    // One scheduler. Four jobs each wait until a ping-pong pair has made 1000 rounds: had
    // blocking() held the scheduler thread, the pair could never run and the jobs would give
    // up at their (generous) deadline.
    erl::runtime rt({.schedulers = 1, .blocking_threads = 4});
    std::atomic<int> rounds{0};
    std::atomic<int> saw_progress{0};
    rt.run([&] {
        erl::pid echo = erl::spawn([] {
            for (;;) {
                auto [from, n] = erl::receive([](std::pair<erl::pid, int> m) { return m; });
                if (n < 0) return;
                erl::send(from, n + 1);
            }
        });
        erl::spawn([&rounds, echo] {
            for (int n = 0; n < 1000; ++n) {
                erl::send(echo, std::pair<erl::pid, int>(erl::self(), n));
                erl::receive([](int) {});
                rounds.fetch_add(1);
            }
            erl::send(echo, std::pair<erl::pid, int>(erl::self(), -1));
        });
        for (int i = 0; i < 4; ++i)
            erl::spawn([&] {
                bool ok = erl::blocking([&rounds] {
                    std::this_thread::sleep_for(200ms);
                    return wait_until([&] { return rounds.load() >= 1000; });
                });
                if (ok) saw_progress.fetch_add(1);
            });
    });
    CHECK(saw_progress == 4);
    CHECK(rounds == 1000);
}

TEST_CASE("200 callers share a pool of 4 threads and never run more than 4 jobs at once",
          "[blocking][race]") {
    erl::runtime rt({.schedulers = 2, .blocking_threads = 4});
    std::atomic<int> running{0}, most{0}, correct{0};
    rt.run([&] {
        for (int i = 0; i < 200; ++i)
            erl::spawn([&, i] {
                int r = erl::blocking(
                    [&running, &most](int x) {
                        int now = running.fetch_add(1) + 1;
                        int seen = most.load();
                        while (now > seen && !most.compare_exchange_weak(seen, now))
                            ;
                        std::this_thread::sleep_for(1ms);
                        running.fetch_sub(1);
                        return x * 2;
                    },
                    i);
                if (r == i * 2) correct.fetch_add(1);
            });
    });
    CHECK(correct == 200);
    CHECK(most <= 4);
    CHECK(most >= 1);
    CHECK(wait_until([&] { return rt.statistics().blocking_jobs == 0; }));
}

namespace {

// A job that holds its pool thread until `release`, and says so.
struct gated_job {
    std::atomic<bool>* started;
    std::atomic<bool>* release;
    std::atomic<bool>* ended;
    std::shared_ptr<int> token; // returned: tells whether the result was freed
    std::shared_ptr<int> operator()() const {
        started->store(true);
        wait_until([this] { return release->load(); });
        ended->store(true);
        return token;
    }
};

// Four jobs that each wait until all four run at once: true when the pool has its full width.
bool pool_has_full_width() {
    std::atomic<int> inside{0};
    std::atomic<int> met{0};
    erl::pid me = erl::self();
    for (int i = 0; i < 4; ++i)
        erl::spawn([&, me] {
            bool ok = erl::blocking([&inside] {
                inside.fetch_add(1);
                return wait_until([&] { return inside.load() >= 4; });
            });
            if (ok) met.fetch_add(1);
            erl::send(me, 0);
        });
    for (int i = 0; i < 4; ++i)
        erl::receive([](int) {});
    return met == 4;
}

} // namespace

TEST_CASE("a caller killed during blocking unwinds at once and the pool keeps its width",
          "[blocking][race]") {
    erl::runtime rt({.schedulers = 2, .blocking_threads = 4});
    auto token = std::make_shared<int>(1);
    std::atomic<bool> started{false}, release{false}, ended{false}, unwound{false};
    std::atomic<bool> returned{false};
    bool job_still_running_at_down = false;
    erl::exit_reason reason;
    bool full_width = false;
    rt.run([&] {
        erl::pid caller = erl::spawn([&] {
            struct on_unwind {
                std::atomic<bool>* flag;
                ~on_unwind() { flag->store(true); }
            } guard{&unwound};
            erl::blocking(gated_job{&started, &release, &ended, token});
            returned = true;
        });
        erl::ref m = erl::monitor(caller);
        REQUIRE(wait_in_process([&] { return started.load(); }));
        erl::exit(caller, erl::exit_reason::kill());
        erl::receive(erl::guard([m](const erl::down_msg& d) { return d.id == m; },
                                [&](erl::down_msg d) { reason = d.reason; }),
                     erl::after(30s, [] {}));
        job_still_running_at_down = !ended.load();
        release = true;
        full_width = pool_has_full_width();
    });
    CHECK(reason == erl::exit_reason::killed());
    CHECK(job_still_running_at_down);
    CHECK(unwound);
    CHECK_FALSE(returned);
    CHECK(ended);
    CHECK(full_width);
    CHECK(wait_until([&] { return rt.statistics().blocking_jobs == 0; }));
    CHECK(token.use_count() == 1); // the discarded result was freed, not leaked
}

TEST_CASE("a linked crash unwinds a caller that waits in blocking", "[blocking]") {
    erl::runtime rt({.schedulers = 1, .blocking_threads = 2});
    auto token = std::make_shared<int>(1);
    std::atomic<bool> started{false}, release{false}, ended{false};
    bool job_still_running_at_down = false;
    erl::exit_reason reason;
    auto previous = erl::set_log_handler([](const erl::log_event&) {}); // the crash report
    rt.run([&] {
        erl::pid crasher = erl::spawn([] {
            erl::receive([](int) {});
            throw std::runtime_error("boom");
        });
        erl::pid caller = erl::spawn([&, crasher] {
            erl::link(crasher);
            erl::blocking(gated_job{&started, &release, &ended, token});
        });
        erl::ref m = erl::monitor(caller);
        REQUIRE(wait_in_process([&] { return started.load(); }));
        erl::send(crasher, 1);
        erl::receive(erl::guard([m](const erl::down_msg& d) { return d.id == m; },
                                [&](erl::down_msg d) { reason = d.reason; }),
                     erl::after(30s, [] {}));
        job_still_running_at_down = !ended.load();
        release = true;
    });
    erl::set_log_handler(previous);
    CHECK(reason.is_exception());
    CHECK(job_still_running_at_down);
    // The job ends on its own after its caller's death; its result is then freed.
    CHECK(wait_until([&] { return rt.statistics().blocking_jobs == 0; }));
    CHECK(ended);
    CHECK(token.use_count() == 1);
}

TEST_CASE("jobs whose callers died before they started are skipped", "[blocking]") {
    erl::runtime rt({.schedulers = 1, .blocking_threads = 1});
    std::atomic<bool> started{false}, release{false}, ended{false};
    std::atomic<int> ran{0}, drops{0};
    bool queued_seen = false;
    bool after_ran = false;
    rt.run([&] {
        // The only pool thread is held by a gated job; five more callers queue behind it.
        erl::spawn([&] { erl::blocking(gated_job{&started, &release, &ended, nullptr}); });
        REQUIRE(wait_in_process([&] { return started.load(); }));
        std::vector<erl::ref> downs;
        std::vector<erl::pid> waiting;
        for (int i = 0; i < 5; ++i) {
            erl::pid p = erl::spawn(
                [&] { erl::blocking([&ran, probe = drop_probe(&drops)] { ran.fetch_add(1); }); });
            downs.push_back(erl::monitor(p));
            waiting.push_back(p);
        }
        queued_seen = wait_in_process([&] { return rt.statistics().blocking_jobs == 6; });
        for (auto& p : waiting)
            erl::exit(p, erl::exit_reason::kill());
        for (std::size_t i = 0; i < downs.size(); ++i)
            erl::receive([](erl::down_msg) {});
        release = true;
        // FIFO with one thread: by the time this job runs, the five were taken off the queue.
        after_ran = erl::blocking([] { return true; });
    });
    CHECK(queued_seen);
    CHECK(after_ran);
    CHECK(ran == 0);
    CHECK(drops == 5); // their copies were freed without being called
}

TEST_CASE("blocking outside a process runs fn on the calling thread", "[blocking]") {
    auto here = std::this_thread::get_id();
    CHECK(erl::blocking([] { return std::this_thread::get_id(); }) == here);
    // Copied like std::thread's arguments: an lvalue reaches an rvalue parameter.
    std::string s = "copy";
    CHECK(erl::blocking([](std::string&& x) { return x + "!"; }, s) == "copy!");
    CHECK(s == "copy");
    CHECK_THROWS_AS(erl::blocking([] { throw disk_error(5); }), disk_error);
    // Inside a job there is no process either: a nested call runs on the pool thread itself.
    erl::runtime rt({.schedulers = 1});
    bool nested_inline = false;
    rt.run([&] {
        nested_inline = erl::blocking([] {
            return erl::blocking([] { return std::this_thread::get_id(); }) ==
                   std::this_thread::get_id();
        });
    });
    CHECK(nested_inline);
}

TEST_CASE("destroying the runtime drops queued jobs and joins running ones", "[blocking]") {
    std::atomic<bool> started{false}, saw_drops{false}, ended{false};
    std::atomic<int> ran{0}, drops{0};
    bool queued_seen = false;
    {
        erl::runtime rt({.schedulers = 1, .blocking_threads = 1});
        rt.spawn([&] {
            erl::blocking([&] {
                started = true;
                // Returns once the runtime's destruction has dropped the three queued jobs:
                // it is then joined, not abandoned.
                saw_drops = wait_until([&] { return drops.load() >= 3; });
                std::this_thread::sleep_for(20ms);
                ended = true;
            });
        });
        REQUIRE(wait_until([&] { return started.load(); }));
        for (int i = 0; i < 3; ++i)
            rt.spawn(
                [&] { erl::blocking([&ran, probe = drop_probe(&drops)] { ran.fetch_add(1); }); });
        queued_seen = wait_until([&] { return rt.statistics().blocking_jobs == 4; });
    }
    CHECK(queued_seen);
    CHECK(saw_drops);
    CHECK(ended);
    CHECK(ran == 0);
    CHECK(drops == 3);
}

TEST_CASE("callers killed at random moments leave no job behind", "[blocking][race]") {
    erl::runtime rt({.schedulers = 2, .blocking_threads = 3});
    auto token = std::make_shared<int>(1);
    std::atomic<int> calls{0};
    bool drained = false;
    rt.run([&] {
        std::vector<erl::pid> callers;
        for (int i = 0; i < 40; ++i)
            callers.push_back(erl::spawn([&calls, token] {
                for (;;) {
                    erl::blocking([token] {
                        std::this_thread::yield();
                        return token;
                    });
                    calls.fetch_add(1);
                }
            }));
        std::vector<erl::ref> downs;
        for (auto& p : callers)
            downs.push_back(erl::monitor(p));
        REQUIRE(wait_in_process([&] { return calls.load() >= 200; }));
        for (std::size_t i = 0; i < callers.size(); ++i) {
            erl::exit(callers[i], erl::exit_reason::kill());
            if (i % 4 == 0) erl::sleep_for(1ms);
        }
        for (std::size_t i = 0; i < downs.size(); ++i)
            erl::receive([](erl::down_msg) {});
        drained = wait_in_process([&] { return rt.statistics().blocking_jobs == 0; });
    });
    CHECK(drained);
    CHECK(token.use_count() == 1); // every result, delivered or discarded, was freed
}
