// Shared helpers of the supervisor and application tests.
#pragma once

#include <catch2/catch.hpp>

#include <erl/erl.hpp>
#include <erl/supervisor.hpp>

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sup_test {

using namespace std::chrono_literals;
using namespace erl::literals;
namespace sup = erl::supervisor;

// What the test children tell the observer.
struct started {
    erl::atom id;
    erl::pid pid;
    int arg = 0;
};
struct stopped {
    erl::atom id;
    erl::exit_reason reason;
};
// Asks a test child to end with a reason.
struct quit {
    erl::exit_reason reason;
};

// Sent by a test child to the supervisor once it runs (proc_lib's init_ack, in short).
struct ready {
    erl::pid from;
};

// A child that reports its start, ends on quit{reason}, and (when trapping) reports the exit
// signal that stops it before ending with its reason.
inline void child_body(erl::pid observer, erl::atom id, bool trap, int arg) {
    if (trap) erl::process_flag(erl::trap_exit, true);
    erl::send(observer, started{id, erl::self(), arg});
    for (;;) {
        erl::receive([](quit q) { erl::exit(q.reason); },
                     [&](erl::exit_msg m) {
                         erl::send(observer, stopped{id, m.reason});
                         erl::exit(m.reason);
                     });
    }
}

// Starts child_body synchronously, as proc_lib does: the start returns once the child has
// trapped exits and sent its start report, so that starts and stops are seen in order.
inline sup::start_result start_sync(erl::pid observer, erl::atom id, int arg) {
    erl::pid sup_pid = erl::self();
    auto mark = erl::mark_mailbox();
    erl::pid p = erl::spawn_link([=] {
        erl::process_flag(erl::trap_exit, true);
        erl::send(sup_pid, ready{erl::self()});
        child_body(observer, id, true, arg);
    });
    return erl::receive(
        mark,
        erl::guard([p](const ready& r) { return r.from == p; },
                   [p](ready) { return sup::start_result::ok(p); }),
        erl::guard([p](const erl::exit_msg& m) { return m.from == p; },
                   [](erl::exit_msg m) { return sup::start_result::error(m.reason); }));
}

inline sup::child_spec child(erl::pid observer, erl::atom id,
                             sup::restart_type r = sup::restart_type::permanent, int arg = 0) {
    sup::child_spec s;
    s.id = id;
    s.start = [=] { return start_sync(observer, id, arg); };
    s.restart = r;
    return s;
}

// Records start/stop reports as "start a" / "stop a"; "timeout" when none came in time.
inline std::vector<std::string> events(int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        erl::receive([&](started s) { out.push_back("start " + s.id.str()); },
                     [&](stopped s) { out.push_back("stop " + s.id.str()); },
                     erl::after(20s, [&] { out.push_back("timeout"); }));
    }
    return out;
}

// The next start report (its pid is null when none came in time).
inline started next_start() {
    return erl::receive([](started s) { return s; }, erl::after(20s, [] {
                            return started{erl::atom("timeout"), {}, 0};
                        }));
}

// The reason of the DOWN for `mon` (timeout when none came in time).
inline erl::exit_reason await_down(const erl::ref& mon) {
    return erl::receive(erl::guard([&](const erl::down_msg& d) { return d.id == mon; },
                                   [](erl::down_msg d) { return d.reason; }),
                        erl::after(20s, [] { return erl::exit_reason(erl::atom("timeout")); }));
}

// Whether nothing of type T arrives within `d` (only for "nothing else happens" checks).
template <typename T>
bool quiet_for(std::chrono::milliseconds d) {
    return erl::receive([](const T&) { return false; }, erl::after(d, [] { return true; }));
}

// Captures log events (supervisor and crash reports) while alive; restores the handler after.
class log_capture {
  public:
    log_capture() {
        previous_ = erl::set_log_handler([this](const erl::log_event& e) {
            std::lock_guard lock(mutex_);
            if (texts_.size() < 100000) texts_.push_back(e.text);
            ++count_;
        });
    }
    ~log_capture() { erl::set_log_handler(previous_); }
    log_capture(const log_capture&) = delete;
    log_capture& operator=(const log_capture&) = delete;

    std::size_t count_containing(std::string_view needle) {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (auto& t : texts_)
            if (t.find(needle) != std::string::npos) ++n;
        return n;
    }

  private:
    std::mutex mutex_;
    std::vector<std::string> texts_;
    std::size_t count_ = 0;
    erl::log_handler previous_;
};

// Runs `body` as a process that traps exits, in a fresh runtime, and checks that nothing is
// left behind: no process, link or monitor.
template <typename F>
void in_runtime(F body) {
    erl::runtime rt({.schedulers = 2});
    rt.run([&] {
        erl::process_flag(erl::trap_exit, true);
        body();
    });
    auto st = rt.statistics();
    CHECK(st.processes == 0);
    CHECK(st.links == 0);
    CHECK(st.monitors == 0);
    CHECK(st.registered_names == 0);
}

} // namespace sup_test
