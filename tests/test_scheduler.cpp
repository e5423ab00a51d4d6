#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <algorithm>
#include <atomic>
#include <cfenv>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;

namespace {
// Answers 1 to every pid it receives; a null pid ends it.
void answer_one_until_null() {
    for (;;) {
        auto from = erl::receive([](erl::pid p) { return p; });
        if (!from) return;
        erl::send(from, 1);
    }
}

// Passes a message back and forth with the process whose pid it receives first, until `stop`:
// two of these keep a scheduler busy with direct switches that never pass through its loop.
// Counts its round trips in `trips` when given.
void busy_partner(const std::atomic<bool>* stop, std::atomic<long>* trips) {
    erl::pid other = erl::receive([](erl::pid p) { return p; });
    while (!*stop) {
        erl::send(other, 1);
        erl::receive([](int) {});
        if (trips) trips->fetch_add(1, std::memory_order_relaxed);
    }
    erl::send(other, 1); // let the other one see `stop` too
}

// Starts a busy pair, from a process of `rt` (null) or from a plain thread.
void start_busy_pair(const std::atomic<bool>& stop, erl::runtime* rt = nullptr,
                     std::atomic<long>* trips = nullptr) {
    std::atomic<long>* none = nullptr;
    erl::pid a =
        rt ? rt->spawn(busy_partner, &stop, trips) : erl::spawn(busy_partner, &stop, trips);
    erl::pid b = rt ? rt->spawn(busy_partner, &stop, none) : erl::spawn(busy_partner, &stop, none);
    erl::send(a, b);
    erl::send(b, a);
}
} // namespace

TEST_CASE("spawn 100k processes and collect every result", "[scheduler][spawn]") {
    erl::runtime rt({.schedulers = 2});
    long long sum = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        const int n = 100000;
        for (int i = 0; i < n; ++i)
            erl::spawn([me, i] { erl::send(me, i); });
        for (int i = 0; i < n; ++i)
            sum += erl::receive([](int v) { return v; });
    });
    CHECK(sum == 100000LL * 99999 / 2);
    CHECK(rt.statistics().processes == 0);
}

TEST_CASE("cross-scheduler send stress loses nothing", "[scheduler][stress]") {
    erl::runtime rt({.schedulers = 4}); // more threads than cores: forces preemption and steals
    static constexpr int senders = 16, each = 20000;
    std::atomic<long long> total{0};
    rt.run([&] {
        erl::pid sink = erl::spawn([&] {
            long long sum = 0;
            std::vector<int> last(senders, -1);
            for (int i = 0; i < senders * each; ++i) {
                auto [who, v] = erl::receive([](std::pair<int, int> m) { return m; });
                REQUIRE(v == last[who] + 1); // per-sender order holds across threads
                last[who] = v;
                sum += v;
            }
            total = sum;
        });
        for (int s = 0; s < senders; ++s)
            erl::spawn([sink, s] {
                for (int i = 0; i < each; ++i)
                    erl::send(sink, std::make_pair(s, i));
            });
    });
    CHECK(total == (long long)senders * each * (each - 1) / 2);
}

TEST_CASE("plain threads can send into a running runtime concurrently", "[scheduler][stress]") {
    erl::runtime rt({.schedulers = 2});
    std::atomic<int> got{0};
    erl::pid sink = rt.spawn([&] {
        for (int i = 0; i < 4 * 5000; ++i)
            got += erl::receive([](int v) { return v; });
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([sink] {
            for (int i = 0; i < 5000; ++i)
                erl::send(sink, 1);
        });
    for (auto& t : threads)
        t.join();
    rt.wait();
    CHECK(got == 20000);
}

TEST_CASE("a busy process does not starve a pinger on the same scheduler", "[scheduler][fair]") {
    erl::runtime rt({.schedulers = 1});
    std::atomic<bool> stop{false};
    int pongs = 0;
    rt.run([&] {
        // The busy process never waits; it only calls erl::yield() (or sends) now and then.
        erl::spawn([&] {
            while (!stop)
                erl::yield();
        });
        erl::spawn([&] {
            while (!stop)
                erl::send(erl::self(), 0), erl::receive([](int) {});
        });
        erl::pid echo = erl::spawn(answer_one_until_null);
        for (int i = 0; i < 1000; ++i) {
            erl::send(echo, erl::self());
            pongs += erl::receive([](int v) { return v; });
        }
        erl::send(echo, erl::pid());
        stop = true;
    });
    CHECK(pongs == 1000);
}

TEST_CASE("busy pairs spread evenly over the schedulers", "[scheduler][balance]") {
    // Four pairs of processes keep each other busy on two schedulers. No scheduler ever runs
    // dry, so stealing alone would leave whatever split the start gave (often 3:1); periodic
    // balancing must bring it to 2:2. Each ping reports where it runs every 2,000 round trips.
    erl::runtime rt({.schedulers = 2});
    std::atomic<bool> stop{false};
    bool even = false;
    rt.run([&] {
        erl::pid main_pid = erl::self();
        for (int pair = 0; pair < 4; ++pair) {
            erl::spawn([&stop, main_pid, pair] {
                erl::pid pong = erl::spawn([] {
                    while (auto from = erl::receive([](erl::pid p) { return p; }))
                        erl::send(from, 0);
                });
                for (long i = 1; !stop; ++i) {
                    erl::send(pong, erl::self());
                    erl::receive([](int) {});
                    if (i % 2000 == 0)
                        erl::send(main_pid, std::pair<int, unsigned>(pair, erl::scheduler_id()));
                }
                erl::send(pong, erl::pid());
            });
        }
        unsigned where[4] = {0, 0, 0, 0};
        auto deadline = std::chrono::steady_clock::now() + 30s;
        while (!even && std::chrono::steady_clock::now() < deadline) {
            auto [pair, id] = erl::receive([](std::pair<int, unsigned> r) { return r; });
            where[pair] = id;
            int on_first = 0, known = 0;
            for (unsigned w : where) {
                known += w != 0;
                on_first += w == 1;
            }
            even = known == 4 && on_first == 2;
        }
        stop = true;
    });
    CHECK(even);
}

// Processes that wait for each other switch straight from one to the next (a handoff) without
// passing through the scheduler loop; the loop's own duties must still come round.
TEST_CASE("timers fire while processes hand off to each other without pause",
          "[scheduler][handoff]") {
    erl::runtime rt({.schedulers = 1});
    std::atomic<bool> stop{false};
    int timeouts = 0;
    rt.run([&] {
        start_busy_pair(stop);
        // This process only ever waits for a timeout: nothing but the timer check wakes it
        // while a and b keep the scheduler busy.
        for (int i = 0; i < 20; ++i)
            timeouts += erl::receive([](double) { return 0; }, erl::after(2ms, [] { return 1; }));
        stop = true;
    });
    CHECK(timeouts == 20);
}

// A process waiting on a busy scheduler is not parked at once (a "soft" wait, which only its
// own scheduler's thread can end: docs/semantics.md). Signals from other threads must still
// wake it while the scheduler never runs dry.
TEST_CASE("a waiting process gets a plain thread's message while others hand off without pause",
          "[scheduler][handoff][soft]") {
    // The scheduler must take the waiter up within a few switches of the signal (not only when
    // it parks long waiters, every soft-waiter generation of 1,024 dispatches): measured in the
    // busy pair's round trips between the send (counted after it) and the receipt. Both pair
    // processes send before they receive, so a round trip may take less than two dispatches.
    erl::runtime rt({.schedulers = 1});
    std::atomic<bool> stop{false};
    std::atomic<long> trips{0};
    std::atomic<int> got{0};
    std::atomic<bool> waiting{false};
    std::atomic<long> received_at{0};
    start_busy_pair(stop, &rt, &trips);
    erl::pid w = rt.spawn([&] {
        for (int i = 0; i < 100; ++i) {
            waiting = true;
            got += erl::receive([](long v) { return int(v); });
            received_at = trips.load();
        }
    });
    std::vector<long> delays;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    for (int i = 0; i < 100 && std::chrono::steady_clock::now() < deadline; ++i) {
        while (!waiting && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        waiting = false;
        std::this_thread::sleep_for(20us); // let the waiter settle into its wait
        erl::send(w, 1L); // from this plain thread, while the pair keeps the scheduler busy
        long sent_at = trips.load();
        while (got <= i && std::chrono::steady_clock::now() < deadline)
            std::this_thread::yield();
        delays.push_back(received_at.load() - sent_at);
    }
    CHECK(got == 100);
    // The median: a sender that looks just as the waiter announces its wait may miss the
    // announcement (no fence on the hot path); that waiter is then parked a generation later.
    std::sort(delays.begin(), delays.end());
    CHECK(delays[delays.size() / 2] < 256);
    stop = true;
    if (got != 100) rt.request_shutdown();
    rt.wait();
}

TEST_CASE("receive timeouts that are due at once fire in a handoff chain",
          "[scheduler][handoff][soft]") {
    // The timeout is often due before the scheduler parks the waiter: the timer must wake a
    // process that still waits softly.
    erl::runtime rt({.schedulers = 1});
    std::atomic<bool> stop{false};
    int timeouts = 0;
    rt.run([&] {
        start_busy_pair(stop);
        for (int i = 0; i < 2000; ++i)
            timeouts += erl::receive([](double) { return 0; }, erl::after(1us, [] { return 1; }));
        stop = true;
    });
    CHECK(timeouts == 2000);
}

TEST_CASE("a hibernated process woken in a handoff chain gets its stack back",
          "[scheduler][handoff][hibernate]") {
    erl::runtime rt({.schedulers = 1});
    int answers = 0;
    rt.run([&] {
        struct sleeper {
            static void wait_once() {
                erl::hibernate_with([] {
                    auto from = erl::receive([](erl::pid p) { return p; });
                    erl::send(from, 7);
                    wait_once();
                });
            }
        };
        erl::pid h = erl::spawn([] { sleeper::wait_once(); });
        erl::pid echo = erl::spawn(answer_one_until_null);
        for (int i = 0; i < 200; ++i) {
            // Wake the hibernated process and the echo at once: both are then ready, and this
            // process's wait hands off to one of them.
            erl::send(h, erl::self());
            erl::send(echo, erl::self());
            answers += erl::receive([](int v) { return v; });
            answers += erl::receive([](int v) { return v; });
        }
        erl::send(echo, erl::pid());
        erl::exit(h, erl::exit_reason::kill());
    });
    CHECK(answers == 200 * 8);
}

TEST_CASE("exception state survives direct switches between processes in catch blocks",
          "[scheduler][handoff][eh]") {
    erl::runtime rt({.schedulers = 1});
    std::atomic<int> correct{0};
    rt.run([&] {
        auto player = [&correct](std::string name) {
            auto other = erl::receive([](erl::pid p) { return p; });
            try {
                throw std::runtime_error(name);
            } catch (const std::runtime_error&) {
                for (int k = 0; k < 100; ++k) { // every wait hands off to the other player
                    erl::send(other, k);
                    erl::receive([](int) {});
                }
                try {
                    throw;
                } catch (const std::runtime_error& again) {
                    if (again.what() == name) ++correct;
                }
            }
        };
        erl::pid a = erl::spawn(player, std::string("a"));
        erl::pid b = erl::spawn(player, std::string("b"));
        erl::send(a, b);
        erl::send(b, a);
    });
    CHECK(correct == 2);
}

TEST_CASE("suspending inside a catch block keeps the exception state", "[scheduler][eh]") {
    erl::runtime rt({.schedulers = 2});
    std::atomic<int> correct{0};
    rt.run([&] {
        for (int i = 0; i < 50; ++i)
            erl::spawn([&, i] {
                try {
                    throw std::runtime_error("e" + std::to_string(i));
                } catch (const std::runtime_error&) {
                    // Other processes throw and catch meanwhile, maybe on the other thread.
                    for (int k = 0; k < 5; ++k)
                        erl::yield();
                    erl::sleep_for(1ms);
                    try {
                        throw; // must rethrow *our* exception
                    } catch (const std::runtime_error& again) {
                        if (std::string(again.what()) == "e" + std::to_string(i)) ++correct;
                    }
                    if (std::uncaught_exceptions() == 0 && std::current_exception()) ++correct;
                }
            });
    });
    CHECK(correct == 100);
}

TEST_CASE("one million processes alive at once", "[scheduler][million][.slow]") {
    // Runs in the plain CI build (tag [million]); the default 64 KiB stacks, 1 page each.
    erl::runtime rt({.schedulers = 2});
    const int n = 1000000;
    std::atomic<int> alive{0};
    int replies = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        std::vector<erl::pid> pids;
        pids.reserve(n);
        for (int i = 0; i < n; ++i)
            pids.push_back(erl::spawn([&alive, me] {
                ++alive;
                erl::receive([me](int v) { erl::send(me, v); });
            }));
        while (alive.load() < n)
            erl::sleep_for(10ms);
        CHECK(rt.statistics().processes == std::size_t(n) + 1);
        for (auto& p : pids)
            erl::send(p, 1);
        for (int i = 0; i < n; ++i)
            replies += erl::receive([](int v) { return v; });
    });
    CHECK(replies == n);
}

TEST_CASE("the runtime shuts down with processes still waiting / their destructors run",
          "[scheduler][shutdown]") {
    std::atomic<int> destroyed{0};
    struct guard {
        std::atomic<int>* n;
        ~guard() { ++*n; }
    };
    {
        erl::runtime rt({.schedulers = 2});
        for (int i = 0; i < 100; ++i)
            rt.spawn([&] {
                guard g{&destroyed};
                erl::receive([](int) {}); // never comes
            });
        erl::runtime other({.schedulers = 1}); // a second runtime does not interfere
        int got = 0;
        other.run([&] {
            got = erl::receive([](int v) { return v; }, erl::after(1ms, [] { return 3; }));
        });
        CHECK(got == 3);
        CHECK_FALSE(rt.wait_for(20ms));
        rt.shutdown();
    }
    CHECK(destroyed == 100);
}

TEST_CASE("request_shutdown makes wait return", "[scheduler][shutdown]") {
    erl::runtime rt({.schedulers = 1});
    erl::runtime* r = &rt;
    rt.spawn([r] {
        erl::sleep_for(5ms);
        r->request_shutdown();
        erl::receive([](int) {});
    });
    rt.wait();
    rt.shutdown();
    CHECK(rt.statistics().processes == 0);
}

TEST_CASE("erl::exit unwinds the caller with the given reason", "[process][exit]") {
    erl::runtime rt({.schedulers = 1});
    erl::exit_reason seen;
    std::atomic<int> dtor{0};
    struct guard {
        std::atomic<int>* n;
        ~guard() { ++*n; }
    };
    rt.run([&] {
        erl::pid child = erl::spawn([&] {
            guard g{&dtor};
            erl::exit(erl::exit_reason::shutdown("bye"));
        });
        erl::monitor(child);
        seen = erl::receive([](erl::down_msg d) { return d.reason; });
    });
    CHECK(seen == erl::exit_reason::shutdown("bye"));
    CHECK(dtor == 1);
}

TEST_CASE("spawn options: a bigger stack for a deep process", "[process][stack]") {
    erl::runtime rt({.schedulers = 1});
    std::size_t depth_ok = 0;
    rt.run([&] {
        erl::spawn_options o;
        o.stack_size = 1 << 20;
        erl::spawn(o, [&] {
            // ~400 KiB of frames: far beyond the 64 KiB default.
            auto recurse = [](auto& self, int n) -> std::size_t {
                volatile char pad[4000];
                pad[0] = char(n);
                return n == 0 ? pad[0] : self(self, n - 1) + 1;
            };
            depth_ok = recurse(recurse, 100);
            auto info = erl::process_info(erl::self());
            REQUIRE(info);
            CHECK(info->stack_size == (1u << 20));
        });
    });
    CHECK(depth_ok == 100);
}

TEST_CASE("receive timeouts fire while two schedulers trade messages", "[scheduler][soft]") {
    // Waiters with timeouts on both schedulers while busy pairs on each and a stream of
    // cross-scheduler messages keep parking, waking and soft waiting going at once: a lost timer
    // wake-up leaves a waiter waiting for ever (no message ever comes for it).
    erl::runtime rt({.schedulers = 2});
    std::atomic<bool> stop{false};
    std::atomic<int> finished{0};
    rt.run([&] {
        for (int pair = 0; pair < 2; ++pair)
            start_busy_pair(stop);
        erl::pid sink = erl::spawn([&stop] {
            while (!stop)
                erl::receive([](long) {}, erl::after(1ms));
        });
        for (int w = 0; w < 8; ++w) {
            erl::spawn([&, sink, w] {
                for (int i = 0; i < 100; ++i) {
                    erl::receive([](double) {}, erl::after(std::chrono::microseconds(50 + w * 37)));
                    erl::send(sink, long(i));
                }
                ++finished;
            });
        }
        auto deadline = std::chrono::steady_clock::now() + 20s;
        while (finished < 8 && std::chrono::steady_clock::now() < deadline)
            erl::sleep_for(1ms);
        stop = true;
    });
    CHECK(finished == 8);
}

TEST_CASE("the floating-point rounding mode is kept per process across switches",
          "[scheduler][fenv]") {
    erl::runtime rt({.schedulers = 1});
    int seen_by_other = -1, kept = -1;
    rt.run([&] {
        erl::pid main_pid = erl::self();
        erl::pid other = erl::spawn([&] {
            erl::receive([](int) {});
            seen_by_other = std::fegetround();
            erl::send(main_pid, 0);
        });
        std::fesetround(FE_UPWARD);
        erl::send(other, 1);
        erl::receive([](int) {}); // the other process runs on this thread meanwhile
        kept = std::fegetround();
        std::fesetround(FE_TONEAREST);
    });
    CHECK(seen_by_other == FE_TONEAREST);
    CHECK(kept == FE_UPWARD);
}

namespace {
// A tree of processes as in the skynet benchmark: each spawns `fanout` children and adds up
// what they send back; a leaf sends its number and records how many stacks were in use.
void tree_node(erl::pid parent, long first, long size, long fanout, erl::runtime* rt,
               std::atomic<std::size_t>* peak) {
    if (size == 1) {
        std::size_t now = rt->statistics().stacks;
        std::size_t seen = peak->load();
        while (now > seen && !peak->compare_exchange_weak(seen, now)) {
        }
        erl::send(parent, first);
        return;
    }
    long sub = size / fanout;
    for (long i = 0; i < fanout; ++i)
        erl::spawn(tree_node, erl::self(), first + i * sub, sub, fanout, rt, peak);
    long sum = 0;
    for (long i = 0; i < fanout; ++i)
        sum += erl::receive([](long v) { return v; });
    erl::send(parent, sum);
}
} // namespace

TEST_CASE("a tree of processes is built depth first", "[scheduler][spawn][order]") {
    // 10,000 leaves, 11,111 processes. Run breadth first, every process of a level would wait
    // at once (1,000 stacks and more); depth first only one branch's do: the ones on the path
    // from the root and their unfinished siblings.
    erl::runtime rt({.schedulers = 1});
    std::atomic<std::size_t> peak{0};
    long sum = 0;
    rt.run([&] {
        erl::spawn(tree_node, erl::self(), 0L, 10'000L, 10L, &rt, &peak);
        sum = erl::receive([](long v) { return v; });
    });
    CHECK(sum == 10'000L * 9'999 / 2);
    CHECK(peak.load() < 100);
}

TEST_CASE("the processes one process spawns run in the order it spawned them",
          "[scheduler][spawn][order]") {
    erl::runtime rt({.schedulers = 1});
    std::vector<int> order;
    rt.run([&] {
        erl::pid me = erl::self();
        for (int i = 0; i < 20; ++i)
            erl::spawn([me, i] { erl::send(me, i); });
        for (int i = 0; i < 20; ++i)
            order.push_back(erl::receive([](int v) { return v; }));
    });
    std::vector<int> expected(20);
    for (int i = 0; i < 20; ++i)
        expected[std::size_t(i)] = i;
    CHECK(order == expected);
}

TEST_CASE("a process that spawns without waiting does not outrun the ones it spawns",
          "[scheduler][spawn][order]") {
    // The processes spawned in a time slice run before the spawner's next slice: when it has
    // spawned 100,000 without waiting, all but about the last slice's have run and ended.
    erl::runtime rt({.schedulers = 1, .reductions_per_slice = 1'000});
    std::atomic<int> ran{0};
    int ran_when_done = 0;
    rt.run([&] {
        for (int i = 0; i < 100'000; ++i)
            erl::spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
        ran_when_done = ran.load();
    });
    CHECK(ran_when_done >= 100'000 - 2'000);
    CHECK(ran.load() == 100'000);
}

TEST_CASE("a spawn costs 32 reductions of the spawner's slice", "[scheduler][spawn][fair]") {
    // With the default 4,000 reductions per slice a process that spawns in a loop gives way
    // after 125 spawns, and the processes it spawned run then.
    erl::runtime rt({.schedulers = 1});
    std::atomic<int> ran{0};
    int spawned_before_any_ran = -1;
    rt.run([&] {
        erl::yield(); // a fresh slice
        for (int i = 1; i <= 1'000; ++i) {
            erl::spawn([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
            if (ran.load() > 0) {
                spawned_before_any_ran = i;
                break;
            }
        }
    });
    CHECK(spawned_before_any_ran == 125);
}

TEST_CASE("a spawned process runs while a busy pair keeps its scheduler",
          "[scheduler][spawn][order][handoff]") {
    // The pair hands off between its two processes without end; the spawned process still gets
    // a time slice (at the latest when the pair's slice is over).
    erl::runtime rt({.schedulers = 1});
    std::atomic<bool> stop{false};
    bool answered = false;
    rt.run([&] {
        start_busy_pair(stop);
        erl::pid me = erl::self();
        for (int i = 0; i < 20; ++i) {
            erl::spawn([me] { erl::send(me, 1); });
            answered = erl::receive([](int) { return true; }, erl::after(5s, [] { return false; }));
            if (!answered) break;
        }
        stop = true;
    });
    CHECK(answered);
}

namespace {
// A busy partner (see busy_partner) that tells `waiter` its scheduler every 1,000 round trips.
void reporting_partner(const std::atomic<bool>* stop, erl::pid waiter) {
    erl::pid other = erl::receive([](erl::pid p) { return p; });
    for (long n = 1; !*stop; ++n) {
        erl::send(other, 1);
        erl::receive([](int) {});
        if (n % 1000 == 0) erl::send(waiter, erl::scheduler_id());
    }
    erl::send(other, 1);
}
} // namespace

TEST_CASE("a waiting process woken by a process of another scheduler runs there",
          "[scheduler][soft][placement]") {
    // Two busy pairs, one per scheduler, keep both from running dry, so that a waiting process
    // stays a soft waiter of its scheduler; their processes now and then send it their
    // scheduler. A message from a process on the other scheduler moves it there, as it moves a
    // parked one (processes that talk end up together).
    erl::runtime rt({.schedulers = 2});
    std::atomic<bool> stop{false};
    int rounds = 0, moved = 0;
    rt.run([&] {
        erl::pid waiter = erl::spawn([&rounds, &moved] {
            for (;;) {
                unsigned waited_on = erl::scheduler_id();
                bool waits = erl::process_info(erl::self())->message_queue_len == 0;
                unsigned from = erl::receive([](unsigned s) { return s; });
                if (from == 0) return;
                if (waited_on == from || !waits) continue;
                ++rounds;
                if (erl::scheduler_id() == from) ++moved;
            }
        });
        for (int k = 0; k < 2; ++k) {
            erl::pid a = erl::spawn(reporting_partner, &stop, waiter);
            erl::pid b = erl::spawn(reporting_partner, &stop, waiter);
            erl::send(a, b);
            erl::send(b, a);
        }
        erl::sleep_for(300ms);
        stop = true;
        erl::sleep_for(10ms);
        erl::send(waiter, 0u);
    });
    INFO("rounds with the waiter and the sender on different schedulers: " << rounds);
    CHECK(rounds > 0);
    CHECK(moved >= rounds * 9 / 10); // a balancing step may move one now and then
}

TEST_CASE("neighbouring processes begin their frames on different cache lines",
          "[scheduler][stack]") {
    // Stacks are page-aligned: without colouring, the same frame of every process would sit at
    // the same offset in its page, and so in the same set of the CPU's caches.
    erl::runtime rt({.schedulers = 1});
    std::vector<std::uintptr_t> offsets;
    rt.run([&] {
        erl::pid me = erl::self();
        for (int i = 0; i < 64; ++i)
            erl::spawn([me] {
                int local = 0;
                erl::send(me, reinterpret_cast<std::uintptr_t>(&local) % 4096 / 64);
            });
        for (int i = 0; i < 64; ++i)
            offsets.push_back(erl::receive([](std::uintptr_t v) { return v; }));
    });
    std::sort(offsets.begin(), offsets.end());
    auto distinct = std::unique(offsets.begin(), offsets.end()) - offsets.begin();
    CHECK(distinct >= 16);
}

TEST_CASE("messages to a ready process keep each sender's order whichever way they go",
          "[scheduler][order][race]") {
    // A receiver that is ready but not running on its scheduler takes a local sender's
    // messages straight into its message list (no locked instruction) while a plain thread's
    // go through its inbox: each sender's order holds and nothing is lost.
    erl::runtime rt({.schedulers = 1});
    constexpr int n = 20'000;
    std::atomic<bool> started{false};
    bool in_order = true;
    int got = 0;
    erl::pid receiver;
    std::thread outside;
    rt.run([&] {
        receiver = erl::spawn([&] {
            int next[2] = {0, 0};
            for (int i = 0; i < 2 * n; ++i) {
                auto [who, v] = erl::receive([](std::pair<int, int> m) { return m; });
                in_order = in_order && v == next[who]++;
                ++got;
                if (i % 100 == 0) erl::yield(); // ready, not running, while the others send
            }
        });
        outside = std::thread([&] {
            while (!started)
                std::this_thread::yield();
            for (int i = 0; i < n; ++i)
                erl::send(receiver, std::pair<int, int>(1, i));
        });
        started = true;
        for (int i = 0; i < n; ++i) {
            erl::send(receiver, std::pair<int, int>(0, i));
            if (i % 50 == 0) erl::yield();
        }
    });
    outside.join();
    CHECK(in_order);
    CHECK(got == 2 * n);
}

TEST_CASE("the live process count stays sane while processes end on other schedulers",
          "[scheduler][stress][spawn]") {
    // The count is kept per scheduler (a process spawned on one may end on another) and summed
    // when read: a reader may see a spawn's count and miss its exit or the other way round,
    // but never a count below zero (as a huge unsigned number) nor a spawn refused for it.
    erl::runtime rt({.schedulers = 2});
    std::atomic<bool> done{false};
    std::size_t worst = 0;
    std::thread watcher([&] {
        while (!done) {
            worst = std::max(worst, rt.statistics().processes);
            std::this_thread::yield();
        }
    });
    long refused = 0, sum = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        for (int round = 0; round < 100; ++round) {
            for (int i = 0; i < 1'000; ++i) {
                try {
                    erl::spawn([me, i] { erl::send(me, long(i)); });
                } catch (const std::length_error&) {
                    ++refused;
                    erl::send(me, 0L);
                }
            }
            for (int i = 0; i < 1'000; ++i)
                sum += erl::receive([](long v) { return v; });
        }
    });
    done = true;
    watcher.join();
    CHECK(refused == 0);
    CHECK(sum == 100L * (999L * 1'000 / 2));
    CHECK(worst <= 1'100);
    CHECK(rt.statistics().processes == 0);
}
