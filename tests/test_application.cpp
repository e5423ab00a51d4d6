#include <catch2/catch.hpp>

#include <erl/application.hpp>
#include <erl/erl.hpp>
#include <erl/supervisor.hpp>

#include <chrono>
#include <csignal>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using namespace erl::literals;
namespace sup = erl::supervisor;

namespace {

// Where the test children write "start X" / "stop X" (a pipe end, or a recording function).
using sink = std::function<void(const std::string&)>;

struct ready_ack {
    erl::pid from;
};

// A worker that traps exits, says when it starts and when it is stopped (its terminate
// callback), and starts synchronously so that the start lines come in order.
sup::child_spec noisy(erl::atom id, sink out) {
    sup::child_spec s;
    s.id = id;
    s.start = [id, out] {
        erl::pid parent = erl::self();
        auto mark = erl::mark_mailbox();
        erl::pid p = erl::spawn_link([=] {
            erl::process_flag(erl::trap_exit, true);
            out("start " + id.str());
            erl::send(parent, ready_ack{erl::self()});
            erl::receive([&](erl::exit_msg m) {
                out("stop " + id.str());
                erl::exit(m.reason);
            });
        });
        erl::receive(mark,
                     erl::guard([p](const ready_ack& r) { return r.from == p; }, [](ready_ack) {}));
        return sup::start_result::ok(p);
    };
    return s;
}

// The tree of the tests: a, {mid: b, c}, d.
sup::start_result start_tree(const sink& out) {
    sup::flags f;
    auto mid = sup::supervisor_spec("mid"_a, f, {noisy("b"_a, out), noisy("c"_a, out)});
    return sup::start_link("top"_a, f, {noisy("a"_a, out), mid, noisy("d"_a, out)});
}

const std::vector<std::string> expected_order = {
    "start a", "start b", "start c", "start d", "ready", "stop d", "stop c", "stop b", "stop a"};

class quiet_logs {
  public:
    quiet_logs() : previous_(erl::set_log_handler([](const erl::log_event&) {})) {}
    ~quiet_logs() { erl::set_log_handler(previous_); }

  private:
    erl::log_handler previous_;
};

} // namespace

TEST_CASE("application stops the tree in order on SIGTERM", "[application][supervisor]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(fds[0]);
        const int out_fd = fds[1];
        sink out = [out_fd](const std::string& line) {
            std::string l = line + "\n";
            [[maybe_unused]] ssize_t n = ::write(out_fd, l.data(), l.size());
        };
        erl::set_log_handler([](const erl::log_event&) {});
        erl::application app(
            [out] {
                auto r = start_tree(out);
                out("ready");
                return r;
            },
            {.runtime = {.schedulers = 2}});
        int code = app.run();
        out(app.reason().to_string());
        ::_exit(code);
    }
    ::close(fds[1]);
    std::string text;
    bool signalled = false;
    bool timed_out = false;
    for (;;) {
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, 60000) <= 0) {
            timed_out = true;
            ::kill(child, SIGKILL);
            break;
        }
        char buf[256];
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, std::size_t(n));
        if (!signalled && text.find("ready\n") != std::string::npos) {
            ::kill(child, SIGTERM);
            signalled = true;
        }
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK_FALSE(timed_out);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    std::vector<std::string> lines;
    for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(text.substr(at, nl - at));
    auto expected = expected_order;
    expected.push_back("shutdown");
    CHECK(lines == expected);
}

TEST_CASE("application stop from another thread is an orderly shutdown",
          "[application][supervisor]") {
    quiet_logs quiet;
    std::mutex m;
    std::vector<std::string> lines;
    sink out = [&](const std::string& l) {
        std::lock_guard lock(m);
        lines.push_back(l);
    };
    std::promise<void> ready;
    erl::application app(
        [&] {
            auto r = start_tree(out);
            out("ready");
            ready.set_value();
            return r;
        },
        {.runtime = {.schedulers = 2}, .handle_signals = false});
    std::thread stopper([&] {
        ready.get_future().wait();
        app.stop();
    });
    int code = app.run();
    stopper.join();
    CHECK(code == 0);
    CHECK(app.reason() == erl::exit_reason::shutdown());
    CHECK(lines == expected_order);
}

TEST_CASE("application returns 1 when the top supervisor gives up or fails to start",
          "[application][supervisor]") {
    quiet_logs quiet;
    {
        // Crashes as soon as it starts: the first restart exceeds intensity 0.
        erl::application app(
            [] {
                sup::flags f;
                f.intensity = 0;
                return sup::start_link(
                    f, {sup::worker("crasher"_a, [] { erl::exit(erl::atom("crash")); })});
            },
            {.runtime = {.schedulers = 1}, .handle_signals = false});
        CHECK(app.run() == 1);
        CHECK(app.reason() == erl::exit_reason::shutdown());
    }
    {
        erl::application app(
            [] {
                sup::child_spec bad;
                bad.id = "bad"_a;
                bad.start = [] { return sup::start_result::error(erl::atom("no_config")); };
                return sup::start_link(sup::flags{}, {bad});
            },
            {.runtime = {.schedulers = 1},
             .handle_signals = false,
             .exit_code = [](const erl::exit_reason&, bool) { return 7; }});
        CHECK(app.run() == 7);
        CHECK(app.reason().detail() == "{failed_to_start_child,bad,no_config}");
    }
}
