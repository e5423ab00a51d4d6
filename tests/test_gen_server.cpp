#include <catch2/catch.hpp>

#include <erl/erl.hpp>
#include <erl/gen_server.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct get_count {
    using reply_type = int;
};
struct add {
    int n;
};
struct slow_get { // answers after `delay`
    using reply_type = int;
    std::chrono::milliseconds delay;
};
struct defer_get { // answered later by another process
    using reply_type = std::string;
};
struct crash_call {
    using reply_type = int;
};
struct stop_call {
    using reply_type = std::string;
};
struct stop_noreply {
    using reply_type = int;
};
struct noreply_timeout { // noreply with a timeout: handle_info(timeout) comes
    using reply_type = int;
};
struct tick {};
struct step {
    int n;
};
struct get_log {
    using reply_type = std::vector<std::string>;
};

// Records terminate calls, across the test and the server.
struct terminate_log {
    std::mutex m;
    std::vector<std::string> reasons;
    void add(const erl::exit_reason& r) {
        std::lock_guard l(m);
        reasons.push_back(r.to_string());
    }
    std::vector<std::string> get() {
        std::lock_guard l(m);
        return reasons;
    }
};

struct counter : erl::gen_server<counter> {
    int n = 0;
    terminate_log* tlog = nullptr;
    std::vector<std::string> events;

    init_result init(int start, terminate_log* t) {
        n = start;
        tlog = t;
        return ok();
    }
    int handle_call(get_count) { return n; }
    call_result<int> handle_call(slow_get g) {
        erl::sleep_for(g.delay);
        return reply(n);
    }
    call_result<std::string> handle_call(defer_get, const erl::from& f) {
        erl::spawn([f] {
            erl::sleep_for(5ms);
            erl::reply(f, std::string("later"));
        });
        return noreply();
    }
    int handle_call(crash_call) { throw std::runtime_error("crash in call"); }
    call_result<std::string> handle_call(stop_call) {
        return stop(erl::exit_reason::shutdown("asked"), std::string("bye"));
    }
    call_result<int> handle_call(stop_noreply) { return stop(erl::atom("custom")); }
    call_result<int> handle_call(noreply_timeout, const erl::from& f) {
        pending = f;
        return noreply(20ms);
    }
    std::vector<std::string> handle_call(get_log) { return events; }
    erl::term handle_call(const erl::term& t) {
        if (t.is_atom(erl::atom("ping"))) return erl::term(erl::atom("pong"));
        return erl::term::tuple_from({erl::atom("echo"), t});
    }

    void handle_cast(add a) { n += a.n; }
    result handle_cast(step s) {
        events.push_back("cast " + std::to_string(s.n));
        return noreply(continue_(s));
    }
    void handle_cast(const erl::term& t) { events.push_back(fmt::format("term cast {}", t)); }

    result handle_continue(step s) {
        events.push_back("continue " + std::to_string(s.n));
        return noreply();
    }

    void handle_info(erl::timeout_msg) {
        events.push_back("timeout");
        if (pending) erl::reply(*pending, -1);
        pending.reset();
    }
    void handle_info(tick) { events.push_back("tick"); }
    void handle_info(erl::down_msg) { events.push_back("down"); }
    using info_types = std::tuple<tick>;

    void terminate(const erl::exit_reason& r) {
        if (tlog) tlog->add(r);
    }

    std::optional<erl::from> pending;
};

// Runs fn in a process of `rt` and rethrows what it threw.
template <typename F>
void run_in(erl::runtime& rt, F fn) {
    std::exception_ptr failed;
    rt.run([&] {
        try {
            fn();
        } catch (...) {
            failed = std::current_exception();
        }
    });
    if (failed) std::rethrow_exception(failed);
}

// Runs fn in a process of a fresh runtime (2 schedulers) and rethrows what it threw.
template <typename F>
void in_runtime(F fn, unsigned schedulers = 2) {
    erl::runtime rt({.schedulers = schedulers});
    run_in(rt, std::move(fn));
}

// The reason a call_error carries.
template <typename F>
erl::exit_reason call_error_of(F fn) {
    try {
        fn();
    } catch (const erl::gen_error& e) {
        return e.reason();
    }
    FAIL("no gen_error thrown");
    return {};
}

// Silences warning and error reports during a test.
struct quiet_logs {
    erl::log_handler previous;
    std::shared_ptr<std::vector<erl::log_event>> seen =
        std::make_shared<std::vector<erl::log_event>>();
    std::shared_ptr<std::mutex> m = std::make_shared<std::mutex>();
    quiet_logs() {
        previous = erl::set_log_handler([s = seen, m = m](const erl::log_event& e) {
            std::lock_guard l(*m);
            s->push_back(e);
        });
    }
    ~quiet_logs() { erl::set_log_handler(previous); }
    std::vector<erl::log_event> events() {
        std::lock_guard l(*m);
        return *seen;
    }
};

} // namespace

TEST_CASE("gen_server: typed call / cast and info", "[gen_server]") {
    in_runtime([] {
        auto c = erl::start<counter>(10, nullptr);
        REQUIRE(c);
        static_assert(std::is_same_v<decltype(erl::call(c, get_count{})), int>);
        CHECK(erl::call(c, get_count{}) == 10);
        erl::cast(c, add{5});
        CHECK(erl::call(c, get_count{}) == 15);
        erl::send(c.get_pid(), tick{});
        erl::send(c.get_pid(), std::string("unhandled"));
        auto log = erl::call(c, get_log{});
        CHECK(log == std::vector<std::string>{"tick"});
        erl::stop(c);
        CHECK_FALSE(erl::is_alive(c.get_pid()));
    });
}

namespace {

struct init_variants : erl::gen_server<init_variants> {
    bool timed_out = false;
    init_result init(int mode) {
        switch (mode) {
        case 0:
            return ok();
        case 1:
            return ignore();
        case 2:
            return stop(erl::atom("bad_config"));
        case 3:
            throw std::runtime_error("init crashed");
        case 4:
            return ok(10ms); // handle_info(timeout) comes
        case 5:
            erl::sleep_for(1s);
            return ok();
        default:
            return ok();
        }
    }
    bool handle_call(get_count) { return timed_out; }
    void handle_info(erl::timeout_msg) { timed_out = true; }
};

} // namespace

TEST_CASE("gen_server: init results", "[gen_server]") {
    quiet_logs quiet;
    in_runtime([] {
        auto ok = erl::start<init_variants>(0);
        CHECK(ok);
        erl::stop(ok);

        auto ignored = erl::start<init_variants>(1);
        CHECK_FALSE(ignored);

        CHECK(call_error_of([] { erl::start<init_variants>(2); }) ==
              erl::exit_reason(erl::atom("bad_config")));
        auto crash = call_error_of([] { erl::start<init_variants>(3); });
        CHECK(crash.is_exception());
        CHECK(crash.detail() == "init crashed");

        // init returning ok(timeout): handle_info(timeout_msg) runs when nothing arrives.
        auto t = erl::start<init_variants>(4);
        erl::sleep_for(200ms); // (10 ms would do on an idle machine)
        CHECK(erl::call(t, get_count{}) == true);
        erl::stop(t);

        // init slower than the start timeout: the server is killed, start throws timeout.
        auto slow = call_error_of(
            [] { erl::start<init_variants>(erl::start_options{.timeout = 20ms}, 5); });
        CHECK(slow == erl::exit_reason(erl::atoms::timeout));
        CHECK(erl::processes().size() == 1);
    });
}

TEST_CASE("gen_server: start_link and start_monitor", "[gen_server]") {
    quiet_logs quiet;
    in_runtime([] {
        erl::process_flag(erl::trap_exit, true);
        auto s = erl::start_link<init_variants>(0);
        CHECK(erl::process_info(erl::self())->links.size() == 1);
        // A linked start that fails: the error comes back, the EXIT is consumed.
        CHECK(call_error_of([] { erl::start_link<init_variants>(2); }) ==
              erl::exit_reason(erl::atom("bad_config")));
        CHECK(erl::receive([](erl::exit_msg) { return false; },
                           erl::after(20ms, [] { return true; })));
        erl::stop(s);
        CHECK(erl::receive([](erl::exit_msg m) { return m.reason.is_normal(); },
                           erl::after(1s, [] { return false; })));

        auto [m, mon] = erl::start_monitor<init_variants>(0);
        REQUIRE(m);
        REQUIRE(mon);
        erl::stop(m, erl::exit_reason::shutdown());
        auto down =
            erl::receive(erl::guard([mon = mon](const erl::down_msg& d) { return d.id == mon; },
                                    [](erl::down_msg d) { return d.reason; }),
                         erl::after(1s, [] { return erl::exit_reason(erl::atom("none")); }));
        CHECK(down == erl::exit_reason::shutdown());
        // A failing start_monitor leaves no DOWN behind.
        call_error_of([] { erl::start_monitor<init_variants>(2); });
        CHECK(erl::receive([](erl::down_msg) { return false; },
                           erl::after(20ms, [] { return true; })));
    });
}

TEST_CASE("gen_server: registered names", "[gen_server]") {
    in_runtime([] {
        const erl::atom name("counter_srv");
        auto c = erl::start<counter>(erl::start_options{.name = name}, 1, nullptr);
        CHECK(erl::whereis(name) == c.get_pid());
        erl::server<counter> by_name(name);
        CHECK(erl::call(by_name, get_count{}) == 1);
        erl::cast(by_name, add{1});
        CHECK(erl::call(by_name, get_count{}) == 2);

        try {
            erl::start<counter>(erl::start_options{.name = name}, 1, nullptr);
            FAIL("started twice");
        } catch (const erl::start_error& e) {
            CHECK(e.reason().tag() == erl::atom("already_started"));
            CHECK(e.existing() == c.get_pid());
        }
        erl::stop(by_name);
        CHECK_FALSE(erl::whereis(name));
        // An unregistered name: noproc at once, and casts are dropped silently.
        CHECK(call_error_of([&] { erl::call(by_name, get_count{}); }) ==
              erl::exit_reason::noproc());
        erl::cast(by_name, add{1});
        CHECK(call_error_of([&] { erl::stop(by_name); }) == erl::exit_reason::noproc());
    });
}

TEST_CASE("gen_server: a call to a dead or dying server fails at once", "[gen_server]") {
    quiet_logs quiet;
    in_runtime([] {
        auto c = erl::start<counter>(0, nullptr);
        erl::stop(c);
        auto t0 = std::chrono::steady_clock::now();
        CHECK(call_error_of([&] { erl::call(c, get_count{}, 10s); }) == erl::exit_reason::noproc());

        // Dies during the call: the caller gets the server's exit reason, not a timeout.
        auto d = erl::start<counter>(0, nullptr);
        auto r = call_error_of([&] { erl::call(d, crash_call{}, 10s); });
        CHECK(r.is_exception());
        CHECK(r.detail() == "crash in call");

        // Killed while handling the call.
        auto k = erl::start<counter>(0, nullptr);
        erl::spawn([p = k.get_pid()] {
            erl::sleep_for(10ms);
            erl::exit(p, erl::exit_reason::kill());
        });
        CHECK(call_error_of([&] { erl::call(k, slow_get{200ms}, 10s); }) ==
              erl::exit_reason::killed());
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);

        // The crash was reported with the last message and the reason.
    });
    bool reported = false;
    for (auto& e : quiet.events())
        if (e.kind == erl::atom("crash_report") && e.text.find("crash_call") != std::string::npos &&
            e.text.find("crash in call") != std::string::npos)
            reported = true;
    CHECK(reported);
}

TEST_CASE("gen_server: call timeout / the late reply never arrives", "[gen_server]") {
    in_runtime([] {
        auto c = erl::start<counter>(7, nullptr);
        // (Margins wide enough for a loaded machine: the 10 ms timeout must fire before the
        // server's 300 ms sleep ends even when the scheduler threads get little CPU.)
        CHECK(call_error_of([&] { erl::call(c, slow_get{300ms}, 10ms); }) ==
              erl::exit_reason(erl::atoms::timeout));
        erl::sleep_for(350ms); // the server has answered by now
        auto info = erl::process_info(erl::self());
        REQUIRE(info);
        CHECK(info->message_queue_len == 0);
        CHECK(erl::receive([](erl::any_message) { return false; },
                           erl::after(0ms, [] { return true; })));
        // The server is fine and the caller's next call works.
        CHECK(erl::call(c, get_count{}) == 7);
        CHECK(erl::process_info(erl::self())->monitors.empty());
        erl::stop(c);
    });
}

TEST_CASE("gen_server: deferred reply from another process", "[gen_server]") {
    in_runtime([] {
        auto c = erl::start<counter>(0, nullptr);
        CHECK(erl::call(c, defer_get{}) == "later");
        // noreply(timeout) then a reply from handle_info(timeout_msg).
        CHECK(erl::call(c, noreply_timeout{}) == -1);
        CHECK(erl::call(c, get_log{}) == std::vector<std::string>{"timeout"});
        // A reply of the wrong type is refused by erl::reply.
        erl::from f{erl::self(),
                    erl::make_ref(),
                    erl::detail::slot_ref::adopt(erl::detail::call_slot::make_alone(1)),
                    {}};
        f.slot->reply_type = erl::detail::type_key_of<int>();
        CHECK_THROWS_AS(erl::reply(f, std::string("x")), erl::badarg);
        CHECK(erl::reply(f, 1));
        CHECK_FALSE(erl::reply(f, 2)); // one reply per call
        erl::stop(c);
    });
}

TEST_CASE("gen_server: handle_continue", "[gen_server]") {
    in_runtime([] {
        auto c = erl::start<counter>(0, nullptr);
        erl::cast(c, step{1});
        erl::cast(c, step{2});
        CHECK(erl::call(c, get_log{}) ==
              std::vector<std::string>{"cast 1", "continue 1", "cast 2", "continue 2"});
        erl::stop(c);
    });
}

TEST_CASE("gen_server: stop results and terminate", "[gen_server]") {
    quiet_logs quiet;
    terminate_log tlog;
    in_runtime([&] {
        auto c = erl::start<counter>(0, &tlog);
        auto mon = erl::monitor(c.get_pid());
        CHECK(erl::call(c, stop_call{}) == "bye"); // stop(reason, reply)
        auto down = erl::receive([](erl::down_msg d) { return d.reason; });
        CHECK(down == erl::exit_reason::shutdown("asked"));
        (void)mon;

        auto d = erl::start<counter>(0, &tlog);
        CHECK(call_error_of([&] { erl::call(d, stop_noreply{}); }) ==
              erl::exit_reason(erl::atom("custom")));

        auto s = erl::start<counter>(0, &tlog);
        erl::stop(s, erl::exit_reason::shutdown());

        // Killed: no terminate.
        auto k = erl::start<counter>(0, &tlog);
        auto km = erl::monitor(k.get_pid());
        erl::exit(k.get_pid(), erl::exit_reason::kill());
        erl::receive(
            erl::guard([km](const erl::down_msg& m) { return m.id == km; }, [](erl::down_msg) {}));
    });
    CHECK(tlog.get() == std::vector<std::string>{"{shutdown,\"asked\"}", "custom", "shutdown"});
}

namespace {
struct trapping : erl::gen_server<trapping> {
    terminate_log* tlog = nullptr;
    void init(terminate_log* t) {
        tlog = t;
        erl::process_flag(erl::trap_exit, true);
    }
    int handle_call(get_count) { return 0; }
    void terminate(const erl::exit_reason& r) { tlog->add(r); }
};
} // namespace

TEST_CASE("gen_server: terminate runs when the trapping server's parent exits", "[gen_server]") {
    terminate_log tlog;
    in_runtime([&] {
        erl::pid observer = erl::self();
        erl::pid parent = erl::spawn([&tlog, observer] {
            auto s = erl::start_link<trapping>(&tlog);
            erl::send(observer, s.get_pid());
            erl::receive([](int) {});
            erl::exit(erl::exit_reason::shutdown());
        });
        erl::pid server = erl::receive([](erl::pid p) { return p; });
        auto mon = erl::monitor(server);
        erl::send(parent, 1);
        auto reason = erl::receive(erl::guard([mon](const erl::down_msg& d) { return d.id == mon; },
                                              [](erl::down_msg d) { return d.reason; }));
        CHECK(reason == erl::exit_reason::shutdown());
    });
    CHECK(tlog.get() == std::vector<std::string>{"shutdown"});
}

TEST_CASE("gen_server: send_request / wait/check/receive_response", "[gen_server]") {
    in_runtime([] {
        auto c = erl::start<counter>(3, nullptr);
        auto id = erl::send_request(c, get_count{});
        CHECK(erl::wait_response(id, 1s) == std::optional<int>(3));

        auto slow = erl::send_request(c, slow_get{300ms});
        CHECK_FALSE(erl::wait_response(slow, 5ms)); // not yet: still pending
        CHECK(erl::wait_response(slow) == 3);

        auto r2 = erl::send_request(c, get_count{});
        CHECK(erl::receive_response(r2, 1s) == 3);

        // receive_response abandons on timeout: the late reply never arrives.
        auto r3 = erl::send_request(c, slow_get{300ms});
        CHECK(call_error_of([&] { erl::receive_response(r3, 5ms); }) ==
              erl::exit_reason(erl::atoms::timeout));
        erl::sleep_for(350ms);
        CHECK(erl::process_info(erl::self())->message_queue_len == 0);

        // check_response on a message received with a catch-all.
        auto r4 = erl::send_request(c, get_count{});
        erl::send(erl::self(), std::string("other"));
        int got = -1, others = 0;
        while (got < 0) {
            erl::receive([&](erl::any_message m) {
                if (auto v = erl::check_response(m, r4))
                    got = *v;
                else
                    ++others;
            });
        }
        CHECK(got == 3);
        CHECK(others == 1);

        // A dead server: the error comes with the response.
        erl::stop(c);
        auto r5 = erl::send_request(c, get_count{});
        CHECK(call_error_of([&] { erl::wait_response(r5, 1s); }) == erl::exit_reason::noproc());
        auto r6 = erl::send_request(erl::server<counter>(erl::atom("nobody_here")), get_count{});
        CHECK(call_error_of([&] { erl::receive_response(r6, 1s); }) == erl::exit_reason::noproc());
    });
}

namespace {

// The paths of a call's monitor (the request carries it; the server drops it when it answers).
struct ask {
    using reply_type = int;
    int v;
};
struct ask_via_helper { // answered by another process
    using reply_type = int;
    int v;
};
struct ask_later { // kept; answered by the server itself at the next `answer` cast
    using reply_type = int;
};
struct answer {};
struct answered { // whether the last `answer` reached its caller
    using reply_type = bool;
};
struct reply_then_crash {
    using reply_type = int;
};
struct hold { // cast: waits, then crashes
    std::chrono::milliseconds d;
};

struct call_paths : erl::gen_server<call_paths> {
    std::optional<erl::from> pending;
    bool last_answer = false;

    int handle_call(ask a) { return a.v; }
    call_result<int> handle_call(ask_via_helper a, const erl::from& f) {
        erl::spawn([f, v = a.v] { erl::reply(f, v); });
        return noreply();
    }
    call_result<int> handle_call(ask_later, const erl::from& f) {
        pending = f;
        return noreply();
    }
    bool handle_call(answered) { return last_answer; }
    call_result<int> handle_call(reply_then_crash, const erl::from& f) {
        erl::reply(f, 1);
        throw std::runtime_error("after the reply");
    }
    void handle_cast(answer) {
        last_answer = erl::reply(*pending, 2);
        pending.reset();
    }
    void handle_cast(hold h) {
        erl::sleep_for(h.d);
        throw std::runtime_error("held");
    }
};

bool mailbox_empty() {
    return erl::receive([](erl::any_message) { return false; },
                        erl::after(0ms, [] { return true; }));
}
bool no_monitors(const erl::pid& p) {
    auto i = erl::process_info(p);
    return i && i->monitors.empty() && i->monitored_by.empty();
}

} // namespace

TEST_CASE("gen_server: the call's monitor comes with the request and leaves with the reply",
          "[gen_server]") {
    quiet_logs quiet;
    in_runtime([] {
        auto s = erl::start<call_paths>();
        // A reply from the server itself: no monitor left on either side, nothing else queued.
        CHECK(erl::call(s, ask{4}) == 4);
        CHECK(no_monitors(erl::self()));
        CHECK(no_monitors(s.get_pid()));
        CHECK(mailbox_empty());

        // A reply from a helper process: the caller demonitors as gen:call does.
        CHECK(erl::call(s, ask_via_helper{5}) == 5);
        CHECK(no_monitors(erl::self()));
        CHECK(erl::call(s, ask{0}) == 0); // the demonitor has reached the server
        CHECK(no_monitors(s.get_pid()));
        CHECK(mailbox_empty());

        // The server answers (itself) after the caller timed out: dropped at the server, and
        // the caller's demonitor cleans the server's side.
        CHECK(call_error_of([&] { erl::call(s, ask_later{}, 10ms); }) ==
              erl::exit_reason(erl::atoms::timeout));
        erl::cast(s, answer{});
        CHECK_FALSE(erl::call(s, answered{}));
        CHECK(no_monitors(s.get_pid()));
        CHECK(no_monitors(erl::self()));
        CHECK(mailbox_empty());
        // And when it answers in time, later, from handle_cast.
        auto id = erl::send_request(s, ask_later{});
        erl::cast(s, answer{});
        CHECK(erl::receive_response(id, 5s) == 2);
        CHECK(erl::call(s, answered{}));
        CHECK(no_monitors(s.get_pid()));

        // check_response on a reply from the server itself.
        auto r = erl::send_request(s, ask{6});
        std::optional<int> got;
        while (!got)
            erl::receive([&](erl::any_message m) { got = erl::check_response(m, r); });
        CHECK(*got == 6);
        CHECK(no_monitors(erl::self()));

        // The server replies, then crashes: the reply arrives, and no DOWN after it.
        erl::unlink(s.get_pid()); // (start does not link; to be sure)
        auto mon = erl::monitor(s.get_pid());
        CHECK(erl::call(s, reply_then_crash{}) == 1);
        auto down = erl::receive([](erl::down_msg d) { return d; });
        CHECK(down.id == mon); // only our own monitor fires
        CHECK(down.reason.is_exception());
        erl::sleep_for(10ms);
        CHECK(mailbox_empty());
        CHECK(no_monitors(erl::self()));
    });
}

TEST_CASE("gen_server: the server dies after taking the request in but before handling it",
          "[gen_server]") {
    quiet_logs quiet;
    in_runtime([] {
        auto s = erl::start<call_paths>();
        erl::cast(s, hold{300ms}); // long enough for a loaded machine to see it still alive
        auto id = erl::send_request(s, ask{1});
        erl::sleep_for(10ms);
        // The server, busy in handle_cast, has taken the request's signal in: the monitor exists.
        auto info = erl::process_info(s.get_pid());
        REQUIRE(info);
        CHECK(info->monitored_by == std::vector<erl::pid>{erl::self()});
        // It crashes before it gets to the request: the caller gets its exit reason.
        auto r = call_error_of([&] { erl::wait_response(id, 5s); });
        CHECK(r.is_exception());
        CHECK(r.detail() == "held");
        CHECK(no_monitors(erl::self()));
        CHECK(mailbox_empty());

        // Killed with the request still on its way: the caller learns at once (killed or
        // noproc, whichever the kill left time for).
        auto k = erl::start<call_paths>();
        erl::exit(k.get_pid(), erl::exit_reason::kill());
        auto t0 = std::chrono::steady_clock::now();
        auto kr = call_error_of([&] { erl::call(k, ask{1}, 10s); });
        CHECK((kr == erl::exit_reason::killed() || kr == erl::exit_reason::noproc()));
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);
        CHECK(no_monitors(erl::self()));
        CHECK(mailbox_empty());
    });
}

TEST_CASE("gen_server: a call's monitor goes with a caller that dies or demonitors and with the "
          "server",
          "[gen_server]") {
    quiet_logs quiet;
    erl::runtime rt({.schedulers = 2});
    std::exception_ptr failed;
    rt.run([&] {
        try {
            auto s = erl::start<call_paths>();
            const erl::pid sp = s.get_pid();
            const erl::pid me = erl::self();
            auto wait_until = [](auto cond) {
                for (int i = 0; i < 2000 && !cond(); ++i)
                    erl::sleep_for(1ms);
                return cond();
            };
            // The caller dies while its request waits at the server: the monitor leaves the
            // server too.
            erl::pid caller = erl::spawn([s] { erl::call(s, ask_later{}, erl::infinity); });
            CHECK(wait_until([&] { return !erl::process_info(sp)->monitored_by.empty(); }));
            CHECK(erl::process_info(sp)->monitored_by == std::vector<erl::pid>{caller});
            CHECK(erl::process_info(caller)->monitors == std::vector<erl::pid>{sp});
            erl::exit(caller, erl::exit_reason::kill());
            CHECK(wait_until([&] { return no_monitors(sp); }));

            // erl::demonitor with a request's tag removes the call's monitor on both sides.
            auto id = erl::send_request(s, ask_later{});
            CHECK(erl::process_info(me)->monitors == std::vector<erl::pid>{sp});
            CHECK(erl::demonitor(id.tag()));
            CHECK_FALSE(erl::demonitor(id.tag()));
            CHECK(no_monitors(me));
            CHECK(erl::call(s, ask{0}) == 0); // the demonitor has reached the server
            CHECK(no_monitors(sp));
            CHECK(call_error_of([&] { erl::receive_response(id, 10ms); }) ==
                  erl::exit_reason(erl::atoms::timeout));
            erl::cast(s, answer{});
            CHECK_FALSE(erl::call(s, answered{})); // abandoned: the answer was dropped

            // A request never collected keeps its monitor (as in OTP) until the server ends:
            // then its DOWN arrives.
            erl::unlink(sp);
            { auto lost = erl::send_request(s, ask_later{}); }
            CHECK(erl::call(s, ask{0}) == 0);
            CHECK(erl::process_info(sp)->monitored_by == std::vector<erl::pid>{me});
            CHECK(erl::process_info(me)->monitors == std::vector<erl::pid>{sp});
            erl::exit(sp, erl::exit_reason(erl::atom("gone")));
            auto d = erl::receive([](erl::down_msg d) { return d; },
                                  erl::after(5s, [] { return erl::down_msg{}; }));
            CHECK(d.process == sp);
            CHECK(d.reason == erl::exit_reason(erl::atom("gone")));
            CHECK(no_monitors(me));
            CHECK(mailbox_empty());
        } catch (...) {
            failed = std::current_exception();
        }
    });
    if (failed) std::rethrow_exception(failed);
    CHECK(rt.statistics().monitors == 0);
}

// Runs fn in a process of a fresh runtime of one scheduler, rethrows what it threw, and checks
// that no monitor is left counted once the runtime has stopped.
template <typename F>
void on_one_scheduler(F fn) {
    erl::runtime rt({.schedulers = 1});
    run_in(rt, std::move(fn));
    CHECK(rt.statistics().monitors == 0);
}

// On one scheduler a server that waits for a message waits softly on its caller's scheduler: the
// caller takes its request in for it (the monitor's record, then the request into the mailbox)
// instead of queueing a signal. Everything must look as if the server had taken the signal in.
TEST_CASE("gen_server: a request taken in by a caller on the server's scheduler keeps order and "
          "monitor",
          "[gen_server]") {
    quiet_logs quiet;
    on_one_scheduler([] {
        const erl::pid me = erl::self();
        // A cast sent before a call is handled before it.
        auto c = erl::start<counter>(0, nullptr);
        CHECK(erl::call(c, get_count{}) == 0); // now it waits
        erl::cast(c, step{1});
        CHECK(erl::call(c, get_log{}) == std::vector<std::string>{"cast 1", "continue 1"});
        for (int i = 0; i < 1000; ++i)
            REQUIRE(erl::call(c, get_count{}) == 0);
        CHECK(no_monitors(c.get_pid()));
        erl::stop(c);

        auto s = erl::start<call_paths>();
        const erl::pid sp = s.get_pid();
        CHECK(erl::call(s, ask{1}) == 1);
        // The monitor is there as soon as the request is, on both sides.
        auto id = erl::send_request(s, ask_later{});
        CHECK(erl::process_info(sp)->monitored_by == std::vector<erl::pid>{me});
        CHECK(erl::process_info(me)->monitors == std::vector<erl::pid>{sp});
        // A signal queued before the request (an exit): the request waits behind it.
        erl::exit(sp, erl::exit_reason(erl::atom("gone")));
        auto late = erl::send_request(s, ask{2});
        CHECK(call_error_of([&] { erl::receive_response(id, 5s); }) ==
              erl::exit_reason(erl::atom("gone")));
        auto lr = call_error_of([&] { erl::receive_response(late, 5s); });
        CHECK((lr == erl::exit_reason(erl::atom("gone")) || lr == erl::exit_reason::noproc()));
        CHECK(no_monitors(me));
        CHECK(mailbox_empty());
    });
}

namespace {
struct slow_plain { // handle_call returns the value itself, after `d`
    using reply_type = int;
    std::chrono::milliseconds d;
};
struct slow_plain_server : erl::gen_server<slow_plain_server> {
    int handle_call(slow_plain s) {
        erl::sleep_for(s.d);
        return 7;
    }
};
} // namespace

// A handle_call that returns its reply is the call's only possible replier; when its caller waits
// softly on the same scheduler the claim is plain stores. A caller that gave up must still never
// get the late reply, and the request's block must still be freed once (ASan checks that).
TEST_CASE("gen_server: a returned reply to a caller that gave up on the same scheduler is dropped",
          "[gen_server]") {
    on_one_scheduler([] {
        auto s = erl::start<slow_plain_server>();
        for (int i = 0; i < 3; ++i) {
            CHECK(call_error_of([&] { erl::call(s, slow_plain{30ms}, 5ms); }) ==
                  erl::exit_reason(erl::atoms::timeout));
            // Wait softly while the server answers: the answer is dropped.
            CHECK(erl::receive([](erl::any_message) { return false; },
                               erl::after(60ms, [] { return true; })));
            CHECK(no_monitors(erl::self()));
            CHECK(no_monitors(s.get_pid()));
        }
        CHECK(erl::call(s, slow_plain{0ms}) == 7);
        CHECK(mailbox_empty());
        erl::stop(s);
    });
}

namespace {
struct tag_of { // the call's own tag
    using reply_type = erl::ref;
};
struct tag_server : erl::gen_server<tag_server> {
    erl::ref handle_call(tag_of, const erl::from& f) { return f.tag; }
};
} // namespace

TEST_CASE("gen_server: call tags are unique references and never equal to make_ref's",
          "[gen_server]") {
    in_runtime([] {
        auto s = erl::start<tag_server>();
        const erl::pid me = erl::self();
        constexpr int callers = 4;
        constexpr int per_caller = 200;
        for (int c = 0; c < callers; ++c)
            erl::spawn([s, me] {
                std::vector<erl::ref> got;
                for (int i = 0; i < per_caller; ++i) {
                    got.push_back(erl::call(s, tag_of{}));
                    got.push_back(erl::make_ref());
                }
                erl::send(me, std::move(got));
            });
        std::set<erl::ref> seen;
        for (int c = 0; c < callers; ++c) {
            auto got = erl::receive([](std::vector<erl::ref> v) { return v; });
            for (const erl::ref& r : got) {
                CHECK(r.is_local());
                seen.insert(r);
            }
        }
        CHECK(seen.size() == std::size_t(2 * callers * per_caller));
        erl::stop(s);
    });
}

TEST_CASE("gen_server: a typed call to a pid of another node is refused", "[gen_server]") {
    in_runtime([] {
        erl::server<call_paths> far(erl::pid(erl::atom("far@away"), 40, 1, 7));
        CHECK_THROWS_AS(erl::call(far, ask{1}), erl::badarg);
        CHECK(no_monitors(erl::self()));
    });
}

TEST_CASE("gen_server: term requests", "[gen_server]") {
    quiet_logs quiet;
    in_runtime([] {
        auto c = erl::start<counter>(0, nullptr);
        erl::server_ref untyped = c.get_pid();
        CHECK(erl::call(untyped, erl::term(erl::atom("ping"))) == erl::term(erl::atom("pong")));
        erl::cast(untyped, erl::term(42));

        // Erlang's own protocol: {'$gen_call', {Pid, Tag}, Req} answered with {Tag, Reply}.
        erl::ref tag = erl::make_ref();
        erl::send(c.get_pid(), erl::term::tuple_from({erl::term::make_atom("$gen_call"),
                                                      erl::term::tuple_from({erl::self(), tag}),
                                                      erl::term(erl::atom("ping"))}));
        auto answer = erl::receive([](erl::term t) { return t; });
        CHECK(answer == erl::term::tuple_from({tag, erl::atom("pong")}));
        erl::send(c.get_pid(),
                  erl::term::tuple_from({erl::term::make_atom("$gen_cast"), erl::term(7)}));
        CHECK(erl::call(c, get_log{}) == std::vector<std::string>{"term cast 42", "term cast 7"});

        // A server without a term handler answers bad_call; a typed request to a server of
        // another class too.
        auto i = erl::start<init_variants>(0);
        CHECK(call_error_of([&] { erl::call(erl::server_ref(i.get_pid()), erl::term(1)); }).tag() ==
              erl::atom("bad_call"));
        CHECK(call_error_of([&] {
                  erl::call(erl::server<counter>(i.get_pid()), get_count{});
              }).tag() == erl::atom("bad_call"));
        CHECK(erl::call(i, get_count{}) == false); // still alive
        erl::stop(i);
        erl::stop(c);
    });
}

TEST_CASE("gen_server: sys get/replace state / suspend/resume / status / trace", "[gen_server]") {
    quiet_logs quiet;
    in_runtime([] {
        auto c = erl::start<counter>(erl::start_options{.name = erl::atom("sys_srv")}, 5, nullptr);
        CHECK(erl::sys::get_state<counter>(c).n == 5);
        auto after = erl::sys::replace_state<counter>(c, [](counter& s) { s.n = 42; });
        CHECK(after.n == 42);
        CHECK(erl::call(c, get_count{}) == 42);
        CHECK(call_error_of([&] { erl::sys::get_state<init_variants>(c); }).tag() ==
              erl::atom("bad_call"));

        erl::sys::suspend(c);
        auto st = erl::sys::get_status(c);
        CHECK(st.suspended);
        CHECK(st.name == erl::atom("sys_srv"));
        // A suspended server queues calls and casts.
        erl::cast(c, add{1});
        CHECK(call_error_of([&] { erl::call(c, get_count{}, 20ms); }) ==
              erl::exit_reason(erl::atoms::timeout));
        erl::sys::change_code(c, erl::term(1), erl::term(2));
        erl::sys::resume(c);
        CHECK(erl::call(c, get_count{}) == 43);
        CHECK(call_error_of([&] { erl::sys::change_code(c, erl::term(1), erl::term(2)); }) ==
              erl::exit_reason(erl::atom("not_suspended")));

        erl::sys::trace(c, true);
        erl::cast(c, add{1});
        CHECK(erl::call(c, get_count{}) == 44);
        erl::sys::trace(c, false);
        erl::stop(c);
    });
    int traced = 0;
    for (auto& e : quiet.events())
        if (e.kind == erl::atom("sys_trace")) ++traced;
    CHECK(traced == 2); // the cast and the call
}

TEST_CASE("gen_server: hibernate and wake", "[gen_server]") {
    struct sleepy : erl::gen_server<sleepy> {
        int calls = 0;
        init_result init() { return ok(erl::hibernate); }
        call_result<int> handle_call(get_count) { return reply(++calls, erl::hibernate); }
    };
    in_runtime([] {
        auto s = erl::start<sleepy>();
        CHECK(erl::call(s, get_count{}) == 1);
        CHECK(erl::call(s, get_count{}) == 2);
        erl::stop(s);
    });
}

TEST_CASE("gen_server: many concurrent callers on 2 schedulers", "[gen_server]") {
    constexpr int callers = 100000;
    std::atomic<long> sum{0};
    in_runtime([&] {
        auto c = erl::start<counter>(1, nullptr);
        erl::pid me = erl::self();
        for (int i = 0; i < callers; ++i) {
            erl::spawn([c, me, &sum] {
                sum += erl::call(c, get_count{}, erl::infinity);
                erl::send(me, 1);
            });
        }
        for (int i = 0; i < callers; ++i)
            erl::receive([](int) {});
        erl::stop(c);
    });
    CHECK(sum == callers);
}
