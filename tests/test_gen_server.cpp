#include <catch2/catch.hpp>

#include <erl/erl.hpp>
#include <erl/gen_server.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
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

// Runs fn in a process of a fresh runtime (2 schedulers) and rethrows what it threw.
template <typename F>
void in_runtime(F fn, unsigned schedulers = 2) {
    erl::runtime rt({.schedulers = schedulers});
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

TEST_CASE("gen_server: typed call, cast and info", "[gen_server]") {
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
