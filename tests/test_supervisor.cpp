#include "test_supervisor_helpers.hpp"

#include <algorithm>
#include <atomic>
#include <stdexcept>

using namespace sup_test;

namespace {

sup::flags with(sup::strategy s, int intensity = 10, std::chrono::milliseconds period = 60s) {
    sup::flags f;
    f.strategy = s;
    f.intensity = intensity;
    f.period = period;
    return f;
}

// Starts a supervisor over children a, b, c and consumes their start reports.
erl::pid start_abc(sup::strategy s, sup::restart_type r = sup::restart_type::permanent) {
    erl::pid me = erl::self();
    auto res =
        sup::start_link(with(s), {child(me, "a"_a, r), child(me, "b"_a, r), child(me, "c"_a, r)});
    REQUIRE(res.is_ok());
    CHECK(events(3) == std::vector<std::string>{"start a", "start b", "start c"});
    return res.pid();
}

erl::pid pid_of(const erl::pid& s, erl::atom id) {
    for (auto& c : sup::which_children(s))
        if (c.id == id) return c.pid;
    return {};
}

const erl::exit_reason crash{erl::atom("crash")};

} // namespace

TEST_CASE("children start in order and stop in reverse order", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid s = start_abc(sup::strategy::one_for_one);
        auto kids = sup::which_children(s);
        REQUIRE(kids.size() == 3);
        CHECK(kids[0].id == "a"_a);
        CHECK(kids[2].id == "c"_a);
        CHECK(kids[1].type == sup::child_type::worker);
        erl::ref mon = erl::monitor(s);
        sup::stop(s, erl::exit_reason::shutdown());
        CHECK(events(3) == std::vector<std::string>{"stop c", "stop b", "stop a"});
        CHECK(await_down(mon) == erl::exit_reason::shutdown());
        erl::receive([](erl::exit_msg) {}, erl::after(20s));
    });
}

TEST_CASE("the supervisor ends when its parent ends", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        erl::pid owner = erl::spawn([me] {
            auto r = sup::start_link(with(sup::strategy::one_for_one),
                                     {child(me, "a"_a), child(me, "b"_a)});
            erl::send(me, r.pid());
            erl::receive([](quit q) { erl::exit(q.reason); });
        });
        erl::pid s = erl::receive([](erl::pid p) { return p; });
        CHECK(events(2) == std::vector<std::string>{"start a", "start b"});
        erl::ref mon = erl::monitor(s);
        erl::send(owner, quit{erl::exit_reason(erl::atom("gone"))});
        CHECK(events(2) == std::vector<std::string>{"stop b", "stop a"});
        CHECK(await_down(mon) == erl::exit_reason(erl::atom("gone")));
    });
}

TEST_CASE("one_for_one restarts only the child that ended per restart type", "[supervisor]") {
    log_capture logs;
    struct row {
        sup::restart_type type;
        erl::exit_reason reason;
        bool restarted;
    };
    const std::vector<row> rows = {
        {sup::restart_type::permanent, erl::exit_reason::normal(), true},
        {sup::restart_type::permanent, erl::exit_reason::shutdown(), true},
        {sup::restart_type::permanent, crash, true},
        {sup::restart_type::transient, erl::exit_reason::normal(), false},
        {sup::restart_type::transient, erl::exit_reason::shutdown(), false},
        {sup::restart_type::transient, erl::exit_reason::shutdown("x"), false},
        {sup::restart_type::transient, crash, true},
        {sup::restart_type::transient, erl::exit_reason::killed(), true},
        {sup::restart_type::temporary, erl::exit_reason::normal(), false},
        {sup::restart_type::temporary, crash, false},
    };
    for (const auto& r : rows) {
        INFO("restart type " << int(r.type) << " reason " << r.reason.to_string());
        in_runtime([&] {
            erl::pid s = start_abc(sup::strategy::one_for_one, r.type);
            erl::pid a = pid_of(s, "a"_a), b = pid_of(s, "b"_a), c = pid_of(s, "c"_a);
            erl::ref mon = erl::monitor(b);
            if (r.reason == erl::exit_reason::killed()) {
                erl::exit(b, erl::exit_reason::kill());
            } else {
                erl::send(b, quit{r.reason});
            }
            if (r.restarted) {
                started again = next_start();
                CHECK(again.id == "b"_a);
                CHECK(again.pid != b);
            }
            // Links hear of an end before monitors do: once the DOWN is here, the supervisor's
            // exit message is queued ahead of any request we send now.
            await_down(mon);
            auto kids = sup::which_children(s);
            CHECK(pid_of(s, "a"_a) == a);
            CHECK(pid_of(s, "c"_a) == c);
            if (r.type == sup::restart_type::temporary) {
                CHECK(kids.size() == 2);
            } else {
                CHECK(kids.size() == 3);
                CHECK(bool(pid_of(s, "b"_a)) == r.restarted);
            }
            sup::stop(s);
        });
    }
}

TEST_CASE("one_for_all restarts every child", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid s = start_abc(sup::strategy::one_for_all);
        erl::pid b = pid_of(s, "b"_a);
        erl::send(b, quit{crash});
        CHECK(events(5) ==
              std::vector<std::string>{"stop c", "stop a", "start a", "start b", "start c"});
        CHECK(sup::count_children(s).active == 3);
        sup::stop(s);
    });
}

TEST_CASE("one_for_all drops temporary siblings and keeps transient ones that ended normally",
          "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        auto r = sup::start_link(
            with(sup::strategy::one_for_all),
            {child(me, "a"_a, sup::restart_type::temporary), child(me, "b"_a), child(me, "c"_a)});
        REQUIRE(r.is_ok());
        events(3);
        erl::send(pid_of(r.pid(), "b"_a), quit{crash});
        CHECK(events(4) == std::vector<std::string>{"stop c", "stop a", "start b", "start c"});
        CHECK(sup::which_children(r.pid()).size() == 2);
        // A temporary child that crashes alone restarts nobody.
        sup::stop(r.pid());
        events(2);
    });
}

TEST_CASE("rest_for_one restarts the child and those started after it", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid s = start_abc(sup::strategy::rest_for_one);
        erl::pid a = pid_of(s, "a"_a);
        erl::send(pid_of(s, "b"_a), quit{crash});
        CHECK(events(3) == std::vector<std::string>{"stop c", "start b", "start c"});
        CHECK(pid_of(s, "a"_a) == a);
        // The last child restarts alone.
        erl::send(pid_of(s, "c"_a), quit{crash});
        CHECK(events(1) == std::vector<std::string>{"start c"});
        // The first restarts everyone.
        erl::send(pid_of(s, "a"_a), quit{crash});
        CHECK(events(5) ==
              std::vector<std::string>{"stop c", "stop b", "start a", "start b", "start c"});
        sup::stop(s);
    });
}

TEST_CASE("restart intensity is exact at the boundary", "[supervisor]") {
    log_capture logs;
    for (int intensity : {0, 1, 3}) {
        INFO("intensity " << intensity);
        in_runtime([&] {
            erl::pid me = erl::self();
            auto r = sup::start_link(with(sup::strategy::one_for_one, intensity, 60s),
                                     {child(me, "a"_a), child(me, "b"_a)});
            REQUIRE(r.is_ok());
            events(2);
            erl::ref mon = erl::monitor(r.pid());
            for (int i = 0; i < intensity; ++i) {
                erl::send(pid_of(r.pid(), "b"_a), quit{crash});
                CHECK(next_start().id == "b"_a);
            }
            CHECK(erl::is_alive(r.pid()));
            erl::send(pid_of(r.pid(), "b"_a), quit{crash});
            // One more: the supervisor stops the others in reverse order and exits shutdown.
            CHECK(events(1) == std::vector<std::string>{"stop a"});
            CHECK(await_down(mon) == erl::exit_reason::shutdown());
            erl::receive([](erl::exit_msg m) { CHECK(m.reason == erl::exit_reason::shutdown()); },
                         erl::after(20s));
        });
    }
    CHECK(logs.count_containing("reached_max_restart_intensity") == 3);
}

TEST_CASE("restarts outside the period do not count", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        auto r = sup::start_link(with(sup::strategy::one_for_one, 1, 100ms), {child(me, "a"_a)});
        REQUIRE(r.is_ok());
        events(1);
        for (int i = 0; i < 3; ++i) {
            erl::send(pid_of(r.pid(), "a"_a), quit{crash});
            CHECK(next_start().id == "a"_a);
            erl::sleep_for(250ms); // the previous restart leaves the period
        }
        CHECK(erl::is_alive(r.pid()));
        sup::stop(r.pid());
        events(1);
    });
}

TEST_CASE("a child that fails to restart is retried and counts against the intensity",
          "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        std::atomic<int> starts{0};
        sup::child_spec flaky;
        flaky.id = "flaky"_a;
        flaky.start = [me, &starts]() {
            int n = ++starts;
            if (n == 2 || n == 3) return sup::start_result::error(erl::atom("not_now"));
            return start_sync(me, "flaky"_a, n);
        };
        auto r = sup::start_link(with(sup::strategy::one_for_one, 5, 60s), {flaky});
        REQUIRE(r.is_ok());
        events(1);
        erl::send(pid_of(r.pid(), "flaky"_a), quit{crash});
        started s = next_start();
        CHECK(s.arg == 4);
        CHECK(starts == 4);
        CHECK(logs.count_containing("start_error") == 2);
        sup::stop(r.pid());
        events(1);
    });
}

TEST_CASE("shutdown timeout escalates to kill and brutal_kill kills at once", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        // Traps exits and ignores them: only kill stops it.
        auto stubborn = [](erl::pid observer, erl::atom id) {
            erl::process_flag(erl::trap_exit, true);
            erl::send(observer, started{id, erl::self(), 0});
            for (;;)
                erl::receive([&](erl::exit_msg m) { erl::send(observer, stopped{id, m.reason}); });
        };
        auto slow = sup::worker("slow"_a, stubborn, me, "slow"_a);
        slow.shutdown = sup::shutdown_policy::after(50ms);
        auto brutal = sup::worker("brutal"_a, stubborn, me, "brutal"_a);
        brutal.shutdown = sup::shutdown_policy::brutal_kill();
        auto polite = child(me, "polite"_a);
        polite.shutdown = sup::shutdown_policy::after(20s);
        auto r = sup::start_link(with(sup::strategy::one_for_one), {slow, brutal, polite});
        REQUIRE(r.is_ok());
        events(3);
        erl::pid s = r.pid();
        erl::pid slow_pid = pid_of(s, "slow"_a), brutal_pid = pid_of(s, "brutal"_a),
                 polite_pid = pid_of(s, "polite"_a);
        erl::ref m1 = erl::monitor(slow_pid), m2 = erl::monitor(brutal_pid),
                 m3 = erl::monitor(polite_pid);

        CHECK(sup::terminate_child(s, "slow"_a).is_ok());
        CHECK(events(1) == std::vector<std::string>{"stop slow"}); // it saw shutdown, ignored it
        CHECK(await_down(m1) == erl::exit_reason::killed());

        CHECK(sup::terminate_child(s, "brutal"_a).is_ok());
        CHECK(await_down(m2) == erl::exit_reason::killed());
        CHECK(quiet_for<stopped>(10ms)); // never saw an exit message

        CHECK(sup::terminate_child(s, "polite"_a).is_ok());
        CHECK(events(1) == std::vector<std::string>{"stop polite"});
        CHECK(await_down(m3) == erl::exit_reason::shutdown());
        // The specs stay; the children are not running.
        CHECK(sup::count_children(s).specs == 3);
        CHECK(sup::count_children(s).active == 0);
        sup::stop(s);
    });
    CHECK(logs.count_containing("shutdown_error") == 1); // the slow one, killed after the timeout
}

TEST_CASE("a supervisor child with infinity is waited for however long it takes", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        // Takes its time to stop: 200 ms, far above any worker default we would notice.
        auto lingering = [](erl::pid observer) {
            erl::process_flag(erl::trap_exit, true);
            erl::send(observer, started{"linger"_a, erl::self(), 0});
            erl::receive([&](erl::exit_msg m) {
                erl::sleep_for(200ms);
                erl::send(observer, stopped{"linger"_a, m.reason});
                erl::exit(m.reason);
            });
        };
        auto inner = sup::worker("linger"_a, lingering, me);
        inner.shutdown = sup::shutdown_policy::infinity();
        auto mid = sup::supervisor_spec("mid"_a, with(sup::strategy::one_for_one), {inner});
        CHECK(mid.effective_shutdown() == sup::shutdown_policy::infinity());
        auto r = sup::start_link(with(sup::strategy::one_for_one), {mid, child(me, "after"_a)});
        REQUIRE(r.is_ok());
        auto first = events(2); // linger starts asynchronously: either may report first
        std::sort(first.begin(), first.end());
        CHECK(first == std::vector<std::string>{"start after", "start linger"});
        CHECK(sup::count_children(r.pid()).supervisors == 1);
        erl::ref mon = erl::monitor(r.pid());
        sup::stop(r.pid(), erl::exit_reason::shutdown());
        CHECK(events(2) == std::vector<std::string>{"stop after", "stop linger"});
        CHECK(await_down(mon) == erl::exit_reason::shutdown());
        erl::receive([](erl::exit_msg) {}, erl::after(20s));
    });
}

TEST_CASE("nested trees restart subtrees and escalate intensity upwards", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        auto mid = sup::supervisor_spec("mid"_a, with(sup::strategy::one_for_one, 1, 60s),
                                        {child(me, "b"_a), child(me, "c"_a)});
        auto r = sup::start_link(with(sup::strategy::one_for_one, 5, 60s), {child(me, "a"_a), mid});
        REQUIRE(r.is_ok());
        erl::pid top = r.pid();
        CHECK(events(3) == std::vector<std::string>{"start a", "start b", "start c"});
        erl::pid mid1 = pid_of(top, "mid"_a);
        // A crash inside the subtree is handled there.
        erl::send(pid_of(mid1, "b"_a), quit{crash});
        CHECK(events(1) == std::vector<std::string>{"start b"});
        CHECK(pid_of(top, "mid"_a) == mid1);
        // Too many crashes in the subtree: it gives up (shutdown) and the top restarts it.
        erl::send(pid_of(mid1, "b"_a), quit{crash});
        CHECK(events(3) == std::vector<std::string>{"stop c", "start b", "start c"});
        erl::pid mid2 = pid_of(top, "mid"_a);
        CHECK(mid2 != mid1);
        CHECK_FALSE(erl::is_alive(mid1));
        // Killing the subtree's supervisor takes its children with it; all restart.
        erl::exit(mid2, erl::exit_reason::kill());
        auto ev = events(4); // the old ones stop while the new ones start: any interleaving
        std::sort(ev.begin(), ev.end());
        CHECK(ev == std::vector<std::string>{"start b", "start c", "stop b", "stop c"});
        sup::stop(top);
        CHECK(events(3) == std::vector<std::string>{"stop c", "stop b", "stop a"});
    });
}

TEST_CASE("simple_one_for_one starts dynamic children from a template", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        auto tmpl =
            sup::dynamic_worker<int>("conn"_a, [me](int n) { child_body(me, "conn"_a, true, n); });
        auto r = sup::start_link(with(sup::strategy::simple_one_for_one), {tmpl});
        REQUIRE(r.is_ok());
        erl::pid s = r.pid();
        std::vector<erl::pid> kids;
        for (int i = 0; i < 5; ++i) {
            auto c = sup::start_child(s, i);
            REQUIRE(c.is_ok());
            CHECK(next_start().arg == i);
            kids.push_back(c.pid());
        }
        CHECK(sup::count_children(s).active == 5);
        CHECK(sup::start_child(s, std::string("wrong")).is_error());
        // A crashed child restarts with its own arguments.
        erl::send(kids[3], quit{crash});
        started again = next_start();
        CHECK(again.arg == 3);
        // terminate_child by pid removes it; by id is an error here.
        CHECK(sup::terminate_child(s, kids[0]).is_ok());
        CHECK(events(1) == std::vector<std::string>{"stop conn"});
        CHECK(sup::terminate_child(s, kids[0]).reason() ==
              erl::exit_reason(erl::atom("not_found")));
        CHECK(sup::terminate_child(s, "conn"_a).reason() ==
              erl::exit_reason(erl::atom("simple_one_for_one")));
        CHECK(sup::delete_child(s, "conn"_a).reason() ==
              erl::exit_reason(erl::atom("simple_one_for_one")));
        CHECK(sup::get_childspec(s, again.pid)->id == "conn"_a);
        auto which = sup::which_children(s);
        CHECK(which.size() == 4);
        CHECK(which[0].id == erl::atoms::undefined);
        // The supervisor stops all of them at once.
        sup::stop(s);
        CHECK(events(4) == std::vector<std::string>(4, "stop conn"));
    });
}

TEST_CASE("simple_one_for_one with temporary and transient templates", "[supervisor]") {
    log_capture logs;
    for (auto type : {sup::restart_type::temporary, sup::restart_type::transient}) {
        in_runtime([&] {
            erl::pid me = erl::self();
            auto tmpl =
                sup::dynamic_worker<int>("t"_a, [me](int n) { child_body(me, "t"_a, true, n); });
            tmpl.restart = type;
            auto r = sup::start_link(with(sup::strategy::simple_one_for_one), {tmpl});
            REQUIRE(r.is_ok());
            auto c1 = sup::start_child(r.pid(), 1);
            auto c2 = sup::start_child(r.pid(), 2);
            events(2);
            erl::ref m1 = erl::monitor(c1.pid()), m2 = erl::monitor(c2.pid());
            erl::send(c1.pid(), quit{erl::exit_reason::normal()});
            erl::send(c2.pid(), quit{crash});
            await_down(m1);
            await_down(m2);
            if (type == sup::restart_type::transient) {
                CHECK(next_start().arg == 2);
                CHECK(sup::count_children(r.pid()).active == 1);
            } else {
                CHECK(sup::count_children(r.pid()).active == 0);
            }
            sup::stop(r.pid());
            if (type == sup::restart_type::transient) events(1);
        });
    }
}

TEST_CASE("a start failure rolls back the children already started", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        sup::child_spec bad;
        bad.id = "bad"_a;
        bad.start = [] { return sup::start_result::error(erl::atom("no_db")); };
        auto r = sup::start_link(with(sup::strategy::one_for_one),
                                 {child(me, "a"_a), child(me, "b"_a), bad, child(me, "c"_a)});
        REQUIRE(r.is_error());
        CHECK(r.reason().is_shutdown());
        CHECK(r.reason().detail() == "{failed_to_start_child,bad,no_db}");
        CHECK(events(4) == std::vector<std::string>{"start a", "start b", "stop b", "stop a"});
        CHECK(quiet_for<started>(10ms)); // c never started

        // A start that throws is a failure too; so is a nested supervisor's failure.
        sup::child_spec thrower;
        thrower.id = "thrower"_a;
        thrower.start = []() -> sup::start_result { throw std::runtime_error("boom"); };
        auto nested = sup::supervisor_spec("inner"_a, with(sup::strategy::one_for_one), {thrower});
        auto r2 = sup::start_link(with(sup::strategy::one_for_one), {child(me, "x"_a), nested});
        REQUIRE(r2.is_error());
        CHECK(r2.reason().detail().find("failed_to_start_child,inner") != std::string_view::npos);
        CHECK(r2.reason().detail().find("boom") != std::string_view::npos);
        CHECK(events(2) == std::vector<std::string>{"start x", "stop x"});

        // Bad specs are refused before anything starts.
        auto dup =
            sup::start_link(with(sup::strategy::one_for_one), {child(me, "a"_a), child(me, "a"_a)});
        CHECK(dup.reason().tag() == erl::atom("bad_start_spec"));
        auto sig = child(me, "s"_a);
        sig.significant = true;
        CHECK(sup::start_link(with(sup::strategy::one_for_one), {sig}).is_error());
        CHECK(quiet_for<started>(10ms));
        // No exit message reached the caller from the failed supervisors.
        CHECK(quiet_for<erl::exit_msg>(10ms));
    });
}

TEST_CASE("start_child restart_child delete_child and get_childspec", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        auto r = sup::start_link("api_sup"_a, with(sup::strategy::one_for_one), {child(me, "a"_a)});
        REQUIRE(r.is_ok());
        events(1);
        sup::sup_ref s("api_sup"_a);
        CHECK(sup::start_link("api_sup"_a, with(sup::strategy::one_for_one), {}).reason().tag() ==
              erl::atom("already_started"));

        auto b = sup::start_child(s, child(me, "b"_a, sup::restart_type::transient));
        REQUIRE(b.is_ok());
        CHECK(events(1) == std::vector<std::string>{"start b"});
        CHECK(sup::start_child(s, child(me, "b"_a)).reason().tag() == erl::atom("already_started"));
        CHECK(sup::delete_child(s, "b"_a).reason() == erl::exit_reason(erl::atom("running")));
        CHECK(sup::restart_child(s, "b"_a).reason() == erl::exit_reason(erl::atom("running")));
        CHECK(sup::terminate_child(s, "b"_a).is_ok());
        CHECK(events(1) == std::vector<std::string>{"stop b"});
        CHECK(sup::start_child(s, child(me, "b"_a)).reason() ==
              erl::exit_reason(erl::atom("already_present")));
        auto again = sup::restart_child(s, "b"_a);
        REQUIRE(again.is_ok());
        CHECK(next_start().pid == again.pid());
        auto spec = sup::get_childspec(s, "b"_a);
        REQUIRE(spec);
        CHECK(spec->restart == sup::restart_type::transient);
        CHECK(spec->effective_shutdown() == sup::shutdown_policy::after(5000ms));
        CHECK_FALSE(sup::get_childspec(s, "zz"_a));
        CHECK(sup::terminate_child(s, again.pid()).is_ok());
        events(1);
        CHECK(sup::delete_child(s, "b"_a).is_ok());
        CHECK(sup::delete_child(s, "b"_a).reason() == erl::exit_reason(erl::atom("not_found")));
        CHECK(sup::restart_child(s, "b"_a).reason() == erl::exit_reason(erl::atom("not_found")));
        // A temporary child's spec goes with it.
        REQUIRE(sup::start_child(s, child(me, "t"_a, sup::restart_type::temporary)).is_ok());
        events(1);
        CHECK(sup::terminate_child(s, "t"_a).is_ok());
        events(1);
        CHECK_FALSE(sup::get_childspec(s, "t"_a));
        // ignore: the spec is kept, without a process.
        sup::child_spec lazy;
        lazy.id = "lazy"_a;
        lazy.start = [] { return sup::start_result::ignore(); };
        CHECK(sup::start_child(s, lazy).is_ignore());
        CHECK(sup::count_children(s).specs == 2);
        CHECK(sup::count_children(s).active == 1);

        sup::stop(s);
        events(1);
        CHECK_THROWS_AS(sup::which_children(s), sup::call_failed);
        try {
            sup::count_children(r.pid());
        } catch (const sup::call_failed& e) {
            CHECK(e.reason() == erl::exit_reason::noproc());
        }
    });
}

TEST_CASE("significant children with auto_shutdown", "[supervisor]") {
    log_capture logs;
    for (auto mode : {sup::auto_shutdown::any_significant, sup::auto_shutdown::all_significant}) {
        in_runtime([&] {
            erl::pid me = erl::self();
            auto f = with(sup::strategy::one_for_one);
            f.auto_shutdown = mode;
            auto s1 = child(me, "s1"_a, sup::restart_type::transient);
            s1.significant = true;
            auto s2 = child(me, "s2"_a, sup::restart_type::temporary);
            s2.significant = true;
            auto r = sup::start_link(f, {child(me, "plain"_a), s1, s2});
            REQUIRE(r.is_ok());
            events(3);
            erl::ref mon = erl::monitor(r.pid());
            // An abnormal exit of a transient significant child restarts it: no shutdown.
            erl::send(pid_of(r.pid(), "s1"_a), quit{crash});
            CHECK(next_start().id == "s1"_a);
            erl::pid s1_pid = pid_of(r.pid(), "s1"_a);
            erl::ref s1_mon = erl::monitor(s1_pid);
            erl::send(s1_pid, quit{erl::exit_reason::normal()});
            await_down(s1_mon);
            if (mode == sup::auto_shutdown::all_significant) {
                CHECK(sup::count_children(r.pid()).active == 2); // s2 still runs
                erl::send(pid_of(r.pid(), "s2"_a), quit{erl::exit_reason::shutdown()});
                CHECK(events(1) == std::vector<std::string>{"stop plain"});
            } else {
                CHECK(events(2) == std::vector<std::string>{"stop s2", "stop plain"});
            }
            CHECK(await_down(mon) == erl::exit_reason::shutdown());
            erl::receive([](erl::exit_msg) {}, erl::after(20s));
        });
    }
}

TEST_CASE("supervisor reports go through the logger", "[supervisor]") {
    log_capture logs;
    in_runtime([&] {
        erl::pid me = erl::self();
        auto r =
            sup::start_link("reporting"_a, with(sup::strategy::one_for_one), {child(me, "a"_a)});
        events(1);
        erl::send(pid_of(r.pid(), "a"_a), quit{crash});
        next_start();
        sup::stop(r.pid());
        events(1);
    });
    CHECK(logs.count_containing("supervisor: {local,reporting} errorContext: child_terminated "
                                "reason: crash offender: [{pid,") == 1);
    CHECK(logs.count_containing("supervisor: {local,reporting} started: [{pid,") == 2);
}

TEST_CASE("a restart storm of 10000 crashes leaks no process link or monitor",
          "[supervisor][stress]") {
    log_capture logs;
    constexpr int supervisors = 24;
    constexpr int per_supervisor = 5;
    constexpr int crashes = 10000;
    std::atomic<int> budget{crashes};
    std::atomic<int> starts{0};
    in_runtime([&] {
        erl::pid me = erl::self();
        // Crashes at once while the budget lasts, then settles and says so.
        auto fragile = [me, &budget, &starts](int) {
            ++starts;
            if (budget.fetch_sub(1) > 0) erl::exit(erl::exit_reason(erl::atom("storm")));
            erl::send(me, started{"settled"_a, erl::self(), 0});
            erl::receive([](quit q) { erl::exit(q.reason); });
        };
        const sup::strategy kinds[] = {sup::strategy::one_for_one, sup::strategy::one_for_all,
                                       sup::strategy::rest_for_one,
                                       sup::strategy::simple_one_for_one};
        std::vector<erl::pid> sups;
        for (int i = 0; i < supervisors; ++i) {
            auto k = kinds[i % 4];
            std::vector<sup::child_spec> specs;
            if (k == sup::strategy::simple_one_for_one) {
                specs.push_back(sup::dynamic_worker<int>("d"_a, fragile));
            } else {
                for (int j = 0; j < per_supervisor; ++j)
                    specs.push_back(sup::worker(erl::atom("w" + std::to_string(j)), fragile, j));
            }
            auto r = sup::start_link(with(k, 1000000, 3600s), std::move(specs));
            REQUIRE(r.is_ok());
            if (k == sup::strategy::simple_one_for_one)
                for (int j = 0; j < per_supervisor; ++j)
                    REQUIRE(sup::start_child(r.pid(), j));
            sups.push_back(r.pid());
        }
        // Meanwhile, the API keeps answering.
        erl::pid prober = erl::spawn_link([sups] {
            for (;;) {
                for (auto& s : sups)
                    (void)sup::count_children(s);
                if (erl::receive([](quit) { return true; }, erl::after(0ms, [] { return false; })))
                    return;
            }
        });
        int settled = 0;
        while (settled < supervisors * per_supervisor) {
            started s = next_start();
            if (!s.pid) break;
            ++settled;
        }
        CHECK(settled == supervisors * per_supervisor);
        CHECK(budget.load() <= 0);
        erl::send(prober, quit{});
        for (auto& s : sups) {
            auto n = sup::count_children(s);
            CHECK(n.active == std::size_t(per_supervisor));
            sup::stop(s);
        }
    });
    CHECK(starts.load() >= crashes + supervisors * per_supervisor);
}
