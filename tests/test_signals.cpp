#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

using namespace std::chrono_literals;

namespace {

// How the victim ends (or what it receives), for the exit-signal matrix.
struct outcome {
    bool died = false;
    erl::exit_reason reason;          // the victim's exit reason when it died
    std::optional<erl::exit_msg> got; // the message when it trapped
};

enum class path { link, exit2 };

// The reasons of the matrix, as a process would end with them.
erl::exit_reason make_reason(int i) {
    switch (i) {
    case 0:
        return erl::exit_reason::normal();
    case 1:
        return erl::exit_reason::kill();
    case 2:
        return erl::exit_reason::killed();
    case 3:
        return erl::exit_reason::shutdown();
    case 4:
        return erl::exit_reason::shutdown("detail");
    case 5:
        return erl::exit_reason(erl::atom("custom"));
    default:
        return {};
    }
}

// A victim process, linked to (or targeted by) a sender that ends or signals with `reason`.
outcome run_case(path via, bool trapping, int reason_index) {
    erl::runtime rt({.schedulers = 1});
    outcome out;
    rt.run([&] {
        erl::pid observer = erl::self();
        erl::pid victim = erl::spawn([trapping, observer, &out] {
            erl::process_flag(erl::trap_exit, trapping);
            erl::send(observer, std::string("ready"));
            erl::receive([&](erl::exit_msg m) { out.got = m; }, erl::after(200ms, [] {}));
        });
        erl::monitor(victim);
        erl::receive([](std::string) {});
        if (via == path::link) {
            erl::spawn([victim, reason_index] {
                erl::link(victim);
                if (reason_index == 6) throw std::runtime_error("crash");
                erl::exit(make_reason(reason_index));
            });
        } else {
            erl::exit_reason r;
            if (reason_index == 6) {
                try {
                    throw std::runtime_error("crash");
                } catch (...) {
                    r = erl::exit_reason::from_exception(std::current_exception());
                }
            } else {
                r = make_reason(reason_index);
            }
            erl::exit(victim, r);
        }
        erl::receive([&](erl::down_msg d) {
            out.reason = d.reason;
            out.died = !out.got && !(d.reason.is_normal());
        });
    });
    return out;
}

} // namespace

TEST_CASE("the exit signal matrix", "[signals][matrix]") {
    auto set_logger = erl::set_log_handler([](const erl::log_event&) {});
    struct row {
        int reason;
        path via;
        bool trapping;
        const char* expect; // "ignored", "dies:<reason>" or "msg:<reason>"
    };
    const row rows[] = {
        {0, path::link, false, "ignored"},
        {0, path::link, true, "msg:normal"},
        {0, path::exit2, false, "ignored"},
        {0, path::exit2, true, "msg:normal"},
        {1, path::link, false, "dies:kill"},
        {1, path::link, true, "msg:kill"},
        {1, path::exit2, false, "dies:killed"},
        {1, path::exit2, true, "dies:killed"},
        {2, path::link, false, "dies:killed"},
        {2, path::link, true, "msg:killed"},
        {2, path::exit2, false, "dies:killed"},
        {2, path::exit2, true, "msg:killed"},
        {3, path::link, false, "dies:shutdown"},
        {3, path::link, true, "msg:shutdown"},
        {3, path::exit2, false, "dies:shutdown"},
        {3, path::exit2, true, "msg:shutdown"},
        {4, path::link, false, "dies:{shutdown,\"detail\"}"},
        {4, path::link, true, "msg:{shutdown,\"detail\"}"},
        {4, path::exit2, false, "dies:{shutdown,\"detail\"}"},
        {4, path::exit2, true, "msg:{shutdown,\"detail\"}"},
        {5, path::link, false, "dies:custom"},
        {5, path::link, true, "msg:custom"},
        {5, path::exit2, false, "dies:custom"},
        {5, path::exit2, true, "msg:custom"},
        {6, path::link, false, "dies:{exception,'std::runtime_error',\"crash\"}"},
        {6, path::link, true, "msg:{exception,'std::runtime_error',\"crash\"}"},
        {6, path::exit2, false, "dies:{exception,'std::runtime_error',\"crash\"}"},
        {6, path::exit2, true, "msg:{exception,'std::runtime_error',\"crash\"}"},
    };
    for (const auto& r : rows) {
        outcome o = run_case(r.via, r.trapping, r.reason);
        std::string got;
        if (o.got) {
            got = "msg:" + o.got->reason.to_string();
        } else if (o.died) {
            got = "dies:" + o.reason.to_string();
        } else {
            got = "ignored";
        }
        INFO("reason " << r.reason << (r.via == path::link ? " via link" : " via exit/2")
                       << (r.trapping ? ", trapping" : ", not trapping"));
        CHECK(got == r.expect);
    }
    erl::set_log_handler(set_logger);
}

TEST_CASE("exit(self / normal) ends a process that does not trap", "[signals]") {
    erl::runtime rt({.schedulers = 1});
    erl::exit_reason r = erl::exit_reason::kill();
    bool after_exit = false;
    rt.run([&] {
        erl::pid c = erl::spawn([&] {
            erl::exit(erl::self(), erl::exit_reason::normal());
            after_exit = true;
        });
        erl::monitor(c);
        r = erl::receive([](erl::down_msg d) { return d.reason; });
    });
    CHECK(r.is_normal());
    CHECK_FALSE(after_exit);
}

TEST_CASE("linking to a dead process gives noproc", "[signals][link]") {
    erl::runtime rt({.schedulers = 1});
    erl::exit_reason trapped, died;
    rt.run([&] {
        erl::pid dead = erl::spawn([] {});
        erl::monitor(dead);
        erl::receive([](erl::down_msg) {});
        erl::pid a = erl::spawn([&, dead] {
            erl::process_flag(erl::trap_exit, true);
            erl::link(dead);
            trapped = erl::receive([](erl::exit_msg m) { return m.reason; });
        });
        erl::pid b = erl::spawn([dead] {
            erl::link(dead);
            erl::receive([](int) {});
        });
        erl::monitor(a);
        erl::monitor(b);
        for (int i = 0; i < 2; ++i)
            erl::receive([&](erl::down_msg d) {
                if (d.process == b) died = d.reason;
            });
    });
    CHECK(trapped == erl::exit_reason::noproc());
    CHECK(died == erl::exit_reason::noproc());
}

TEST_CASE("spawn_link: the link exists before the child runs", "[signals][link]") {
    erl::runtime rt({.schedulers = 2});
    erl::exit_reason got;
    rt.run([&] {
        erl::process_flag(erl::trap_exit, true);
        erl::pid c = erl::spawn_link([] { throw std::logic_error("early"); });
        got = erl::receive(erl::guard([c](const erl::exit_msg& m) { return m.from == c; },
                                      [](erl::exit_msg m) { return m.reason; }));
    });
    CHECK(got.is_exception());
    CHECK(got.detail() == "early");
}

TEST_CASE("unlink stops the exit signal", "[signals][link]") {
    erl::runtime rt({.schedulers = 1});
    bool survived = false;
    rt.run([&] {
        erl::pid c = erl::spawn([] {
            erl::receive([](int) {});
            erl::exit(erl::exit_reason(erl::atom("bad")));
        });
        erl::link(c);
        erl::unlink(c);
        erl::send(c, 1);
        auto m = erl::monitor(c);
        erl::receive(
            erl::guard([m](const erl::down_msg& d) { return d.id == m; }, [](erl::down_msg) {}));
        erl::sleep_for(5ms);
        survived = true;
    });
    CHECK(survived);
}

namespace {
// Each link of the chain spawn_links the next (so every link exists before the next runs);
// the last one tells `top` it is there.
void chain_link(int left, erl::pid top) {
    if (left == 0) {
        erl::send(top, erl::self());
    } else {
        erl::spawn_link(chain_link, left - 1, top);
    }
    erl::receive([](int) {});
}
} // namespace

TEST_CASE("a chain of 10000 linked processes dies together", "[signals][link]") {
    erl::runtime rt({.schedulers = 2});
    erl::exit_reason last;
    std::size_t links_while_alive = 0;
    rt.run([&] {
        erl::process_flag(erl::trap_exit, true);
        erl::pid me = erl::self();
        erl::spawn_link(chain_link, 9999, me);
        erl::pid tail = erl::receive([](erl::pid p) { return p; });
        links_while_alive = rt.statistics().links;
        erl::exit(tail, erl::exit_reason(erl::atom("cascade")));
        last = erl::receive([](erl::exit_msg m) { return m.reason; });
    });
    CHECK(links_while_alive == 2 * 10000);
    CHECK(last == erl::exit_reason(erl::atom("cascade")));
    CHECK(rt.statistics().links == 0);
}

TEST_CASE("a tree of linked processes dies together with the right reason", "[signals][link]") {
    erl::runtime rt({.schedulers = 2});
    erl::exit_reason got;
    std::atomic<int> ready{0};
    rt.run([&] {
        erl::process_flag(erl::trap_exit, true);
        // A root with 100 children with 100 children each: 10,101 processes.
        erl::pid root = erl::spawn_link([&] {
            for (int i = 0; i < 100; ++i)
                erl::spawn_link([&] {
                    for (int k = 0; k < 100; ++k)
                        erl::spawn_link([&] {
                            ++ready;
                            erl::receive([](int) {});
                        });
                    erl::receive([](int) {});
                });
            erl::receive([](int) {});
        });
        while (ready < 10000)
            erl::sleep_for(std::chrono::milliseconds(1));
        CHECK(rt.statistics().processes == 10102);
        erl::exit(root, erl::exit_reason::shutdown("tree"));
        got = erl::receive([](erl::exit_msg m) { return m.reason; });
        while (rt.statistics().processes > 1)
            erl::sleep_for(std::chrono::milliseconds(1));
    });
    CHECK(got == erl::exit_reason::shutdown("tree"));
    CHECK(rt.statistics().links == 0);
}

TEST_CASE("monitor: DOWN with the reason / noproc for a dead pid / many per pair",
          "[signals][monitor]") {
    erl::runtime rt({.schedulers = 1});
    std::vector<std::string> downs;
    rt.run([&] {
        erl::pid c = erl::spawn([] { erl::receive([](int) {}); });
        auto m1 = erl::monitor(c);
        auto m2 = erl::monitor(c);
        CHECK(m1 != m2);
        erl::exit(c, erl::exit_reason(erl::atom("stop")));
        for (int i = 0; i < 2; ++i)
            downs.push_back(erl::receive([&](erl::down_msg d) {
                CHECK(d.process == c);
                return d.reason.to_string();
            }));
        auto m3 = erl::monitor(c); // already dead
        auto d = erl::receive([](erl::down_msg d) { return d; });
        CHECK(d.id == m3);
        downs.push_back(d.reason.to_string());
    });
    CHECK(downs == std::vector<std::string>{"stop", "stop", "noproc"});
    CHECK(rt.statistics().monitors == 0);
}

TEST_CASE("many monitors on both sides: the tables grow and shrink and keep every entry",
          "[signals][monitor]") {
    erl::runtime rt({.schedulers = 1});
    rt.run([] {
        // One watcher with 2000 monitors on one target, and the target with 2000 watchers'
        // entries; half removed in a scattered order, then the rest must still fire.
        erl::pid target = erl::spawn([] { erl::receive([](int) {}); });
        std::vector<erl::ref> refs;
        for (int i = 0; i < 2000; ++i)
            refs.push_back(erl::monitor(target));
        std::vector<bool> removed(refs.size());
        for (std::size_t i = 0; i < refs.size(); i += 2) {
            std::size_t k = (i * 7919) % refs.size(); // scattered, each even slot once
            if (k % 2) k = (k + 1) % refs.size();
            if (removed[k]) continue;
            CHECK(erl::demonitor(refs[k]));
            CHECK_FALSE(erl::demonitor(refs[k]));
            removed[k] = true;
        }
        std::size_t left = 0;
        for (bool r : removed)
            left += r ? 0 : 1;
        CHECK(erl::process_info(erl::self())->monitors.size() == left);
        erl::sleep_for(5ms); // the demonitors have reached the target
        CHECK(erl::process_info(target)->monitored_by.size() == left);
        erl::send(target, 1);
        std::size_t downs = 0;
        while (erl::receive(
            [&](erl::down_msg d) {
                for (std::size_t i = 0; i < refs.size(); ++i)
                    if (refs[i] == d.id) CHECK_FALSE(removed[i]);
                return true;
            },
            erl::after(50ms, [] { return false; })))
            ++downs;
        CHECK(downs == left);
        CHECK(erl::process_info(erl::self())->monitors.empty());
    });
    CHECK(rt.statistics().monitors == 0);
}

TEST_CASE("demonitor with and without flush", "[signals][monitor]") {
    erl::runtime rt({.schedulers = 1});
    bool active1 = false, active2 = true, leftover = false, flushed_gone = false;
    rt.run([&] {
        erl::pid c = erl::spawn([] { erl::receive([](int) {}); });
        auto m = erl::monitor(c);
        active1 = erl::demonitor(m);
        erl::exit(c, erl::exit_reason::kill());
        // No DOWN for a removed monitor.
        erl::receive([](erl::down_msg) {}, erl::after(20ms));

        erl::pid d = erl::spawn([] {});
        auto m2 = erl::monitor(d);
        erl::sleep_for(10ms); // d is gone; its DOWN is queued
        active2 = erl::demonitor(m2);
        leftover =
            erl::receive([](erl::down_msg) { return true; }, erl::after(0ms, [] { return false; }));

        erl::pid e = erl::spawn([] {});
        auto m3 = erl::monitor(e);
        erl::sleep_for(10ms);
        erl::demonitor(m3, erl::demonitor_option::flush);
        flushed_gone =
            erl::receive([](erl::down_msg) { return false; }, erl::after(0ms, [] { return true; }));
    });
    CHECK(active1);
    CHECK_FALSE(active2);
    CHECK(leftover);
    CHECK(flushed_gone);
    CHECK(rt.statistics().monitors == 0);
}

TEST_CASE("a DOWN never overtakes a message sent before the death", "[signals][ordering]") {
    erl::runtime rt({.schedulers = 2});
    int in_order = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        for (int round = 0; round < 200; ++round) {
            erl::pid c = erl::spawn([me] {
                erl::receive([](int) {});
                for (int i = 0; i < 10; ++i)
                    erl::send(me, i);
            });
            erl::monitor(c);
            erl::send(c, 0);
            int seen = 0;
            bool down_last = false;
            while (!down_last) {
                erl::receive([&](int) { ++seen; },
                             [&](erl::down_msg) {
                                 down_last = seen == 10;
                                 if (!down_last) seen = -1000;
                             });
            }
            in_order += down_last ? 1 : 0;
        }
    });
    CHECK(in_order == 200);
}

TEST_CASE("registered names", "[signals][registry]") {
    erl::runtime rt({.schedulers = 1});
    rt.run([&] {
        erl::atom name("server");
        erl::pid c =
            erl::spawn([] { erl::receive([](int v) { erl::send(erl::atom("caller"), v); }); });
        erl::register_name(erl::atom("caller"), erl::self());
        erl::register_name(name, c);
        CHECK(erl::whereis(name) == c);
        CHECK_THROWS_AS(erl::register_name(name, erl::self()), erl::badarg); // taken
        CHECK_THROWS_AS(erl::register_name(erl::atom("x"), c), erl::badarg); // already named
        CHECK_THROWS_AS(erl::register_name(erl::atoms::undefined, c), erl::badarg);
        CHECK_THROWS_AS(erl::send(erl::atom("nobody"), 1), erl::badarg);
        erl::send(name, 5);
        CHECK(erl::receive([](int v) { return v; }) == 5);
        auto m = erl::monitor(c);
        erl::receive([m](erl::down_msg d) { CHECK(d.id == m); });
        // The name is free again once its process has ended.
        CHECK_FALSE(erl::whereis(name));
        erl::pid dead = c;
        CHECK_THROWS_AS(erl::register_name(erl::atom("late"), dead), erl::badarg);
        erl::pid c2 = erl::spawn([] { erl::receive([](int) {}); });
        erl::register_name(name, c2);
        CHECK(erl::whereis(name) == c2);
        auto names = erl::registered();
        CHECK(names.size() == 2);
        erl::unregister(name);
        CHECK_FALSE(erl::whereis(name));
        CHECK_THROWS_AS(erl::unregister(name), erl::badarg);
        // Monitor by name: a DOWN that names it; noproc when nobody has it.
        erl::register_name(name, c2);
        auto mn = erl::monitor(name);
        erl::exit(c2, erl::exit_reason::kill());
        erl::receive([&](erl::down_msg d) {
            CHECK(d.id == mn);
            CHECK(d.reason == erl::exit_reason::killed());
        });
        auto mn2 = erl::monitor(erl::atom("nobody"));
        erl::receive([&](erl::down_msg d) {
            CHECK(d.id == mn2);
            CHECK(d.name == erl::atom("nobody"));
            CHECK(d.reason == erl::exit_reason::noproc());
        });
        erl::unregister(erl::atom("caller"));
    });
    CHECK(rt.statistics().registered_names == 0);
}

TEST_CASE("killing a process blocked in receive / on a timer / or sleeping works at once",
          "[signals][kill]") {
    erl::runtime rt({.schedulers = 2});
    std::atomic<int> unwound{0};
    struct guard {
        std::atomic<int>* n;
        ~guard() { ++*n; }
    };
    std::chrono::steady_clock::duration took{};
    rt.run([&] {
        erl::pid me = erl::self();
        erl::pid a = erl::spawn([&, me] {
            guard g{&unwound};
            erl::send(me, 0);
            erl::receive([](int) {});
        });
        erl::pid b = erl::spawn([&, me] {
            guard g{&unwound};
            erl::send(me, 0);
            erl::receive([](int) {}, erl::after(1h));
        });
        erl::pid c = erl::spawn([&, me] {
            guard g{&unwound};
            erl::send(me, 0);
            erl::sleep_for(1h);
        });
        for (int i = 0; i < 3; ++i)
            erl::receive([](int) {});
        erl::sleep_for(5ms); // let them reach their waits
        auto t0 = std::chrono::steady_clock::now();
        for (auto p : {a, b, c}) {
            erl::monitor(p);
            erl::exit(p, erl::exit_reason::kill());
        }
        for (int i = 0; i < 3; ++i)
            erl::receive([](erl::down_msg d) { CHECK(d.reason == erl::exit_reason::killed()); });
        took = std::chrono::steady_clock::now() - t0;
    });
    CHECK(unwound == 3);
    CHECK(took < 10s);
    CHECK(rt.statistics().pending_timers == 0);
}

TEST_CASE("process_info and processes", "[signals][info]") {
    erl::runtime rt({.schedulers = 2});
    rt.run([&] {
        erl::pid me = erl::self();
        erl::pid c = erl::spawn([me] {
            erl::process_flag(erl::trap_exit, true);
            erl::send(me, erl::atom("ready"));
            erl::receive([](std::string) {});
        });
        erl::receive([](erl::atom) {});
        erl::register_name(erl::atom("infotest"), c);
        erl::link(c);
        auto m = erl::monitor(c);
        erl::send(c, 1);
        erl::send(c, 2);
        erl::sleep_for(5ms);
        auto info = erl::process_info(c);
        REQUIRE(info);
        CHECK(info->self == c);
        CHECK(info->message_queue_len == 2);
        CHECK(info->trap_exit);
        CHECK(info->registered_name == erl::atom("infotest"));
        CHECK(info->links == std::vector<erl::pid>{erl::self()});
        CHECK(info->monitored_by == std::vector<erl::pid>{erl::self()});
        CHECK(info->status == erl::process_status::waiting);
        CHECK(info->stack_size >= 64 * 1024);
        CHECK(info->stack_high_water > 0);
        auto all = erl::processes();
        CHECK(std::find(all.begin(), all.end(), c) != all.end());
        CHECK(std::find(all.begin(), all.end(), erl::self()) != all.end());
        auto mine = erl::process_info(erl::self());
        REQUIRE(mine);
        CHECK(mine->status == erl::process_status::running);
        CHECK(mine->monitors == std::vector<erl::pid>{c});
        erl::unlink(c);
        erl::send(c, std::string("done"));
        erl::receive([m](erl::down_msg d) { CHECK(d.id == m); });
        CHECK_FALSE(erl::process_info(c));
    });
}

TEST_CASE("100000 processes with links / monitors and timers leave nothing behind",
          "[signals][leaks]") {
    auto old = erl::set_log_handler([](const erl::log_event&) {});
    erl::runtime rt({.schedulers = 2});
    rt.run([&] {
        erl::process_flag(erl::trap_exit, true);
        erl::pid me = erl::self();
        const int n = 100000;
        for (int i = 0; i < n; ++i) {
            erl::pid c = erl::spawn_link([me, i] {
                erl::send_after(1h, erl::self(), 0); // cancelled by the process's end
                erl::ref r = erl::monitor(me);
                if (i % 3 == 0) erl::demonitor(r);
                if (i % 2) throw std::runtime_error("x");
            });
            if (i % 5 == 0) erl::monitor(c);
        }
        int exits = 0;
        while (exits < n)
            erl::receive([&](erl::exit_msg) { ++exits; }, [](erl::down_msg) {});
        erl::receive([](erl::down_msg) {}, erl::after(50ms));
    });
    erl::set_log_handler(old);
    auto s = rt.statistics();
    CHECK(s.processes == 0);
    CHECK(s.links == 0);
    CHECK(s.monitors == 0);
    CHECK(s.pending_timers == 0);
}

TEST_CASE("concurrent link/monitor/exit races across schedulers", "[signals][race]") {
    auto old = erl::set_log_handler([](const erl::log_event&) {});
    erl::runtime rt({.schedulers = 4});
    rt.run([&] {
        erl::process_flag(erl::trap_exit, true);
        std::vector<erl::pid> ps;
        for (int i = 0; i < 2000; ++i)
            ps.push_back(erl::spawn([] {
                erl::process_flag(erl::trap_exit, true);
                for (;;)
                    erl::receive([](erl::exit_msg) {}, [](erl::pid p) { erl::link(p); },
                                 [](erl::down_msg) {},
                                 erl::after(30ms, [] { erl::exit(erl::exit_reason::shutdown()); }));
            }));
        for (int i = 0; i < 4000; ++i) {
            erl::spawn([p = ps[i % ps.size()], q = ps[(i * 7) % ps.size()]] {
                erl::link(p);
                erl::monitor(q);
                erl::send(p, q);
                if (q.number() % 2) erl::exit(q, erl::exit_reason(erl::atom("boom")));
            });
        }
        for (auto& p : ps)
            erl::link(p);
        int n = 0;
        while (n < int(ps.size())) {
            erl::receive([&](erl::exit_msg m) {
                if (std::find(ps.begin(), ps.end(), m.from) != ps.end()) ++n;
            });
        }
    });
    erl::set_log_handler(old);
    auto s = rt.statistics();
    CHECK(s.processes == 0);
    CHECK(s.links == 0);
    CHECK(s.monitors == 0);
}

// The monitor count is kept per scheduler and summed when read: monitors made on one scheduler
// and removed on another must still add up, while they exist and after.
TEST_CASE("statistics count live monitors across schedulers", "[signals][race]") {
    erl::runtime rt({.schedulers = 2});
    rt.run([&] {
        erl::pid me = erl::self();
        erl::pid target = erl::spawn([] { erl::receive([](int) {}); });
        const int n = 1000;
        std::vector<erl::pid> watchers;
        for (int i = 0; i < n; ++i)
            watchers.push_back(erl::spawn([me, target] {
                erl::ref r = erl::monitor(target);
                erl::send(me, erl::self());
                erl::receive([](int) {});
                erl::yield(); // maybe on the other scheduler now
                erl::demonitor(r);
                erl::send(me, 0);
            }));
        for (int i = 0; i < n; ++i)
            erl::receive([](erl::pid) {});
        // Each monitor is one entry in the watcher's table and one in the target's; the
        // target takes the requests in when it next runs.
        erl::sleep_for(20ms);
        CHECK(rt.statistics().monitors == std::size_t(2 * n));
        for (auto& w : watchers)
            erl::send(w, 1);
        for (int i = 0; i < n; ++i)
            erl::receive([](int) {});
        erl::send(target, 1);
    });
    CHECK(rt.statistics().monitors == 0);
}
