// supervision_tree: a small service whose workers crash at random and are restarted by their
// supervisors, printed as a timeline. Stops after SECONDS (default 3) or on Ctrl-C, in order.
//   supervision_tree [SECONDS=3]
//
//   service (one_for_one)
//   ├── config           worker, permanent
//   ├── pool (simple_one_for_one, 20 restarts in 1 s)
//   │   └── job 1..4     workers that crash now and then
//   └── reporter         worker, permanent
#include <erl/application.hpp>
#include <erl/erl.hpp>
#include <erl/supervisor.hpp>

#include <chrono>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using namespace erl::literals;
namespace sup = erl::supervisor;

namespace {

const auto t0 = std::chrono::steady_clock::now();

double elapsed() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

template <typename... Args>
void say(fmt::format_string<Args...> f, Args&&... args) {
    fmt::print("{:7.3f}s  {}\n", elapsed(), fmt::format(f, std::forward<Args>(args)...));
    std::fflush(stdout);
}

// A worker that stops politely: it traps exits so that its "terminate" runs.
void config() {
    erl::process_flag(erl::trap_exit, true);
    say("config    {} loaded", erl::self());
    erl::receive([](erl::exit_msg m) {
        say("config    {} stops ({})", erl::self(), m.reason);
        erl::exit(m.reason);
    });
}

// Works in steps of 50..300 ms; one step in eight fails.
void job(int n) {
    std::mt19937 rng(std::random_device{}());
    say("job {}     {} starts", n, erl::self());
    for (;;) {
        erl::sleep_for(std::chrono::milliseconds(50 + rng() % 250));
        if (rng() % 8 == 0) throw std::runtime_error(fmt::format("job {} hit a bad record", n));
    }
}

void reporter() {
    erl::process_flag(erl::trap_exit, true);
    say("reporter  {} ready", erl::self());
    for (;;) {
        bool done = erl::receive(
            [](erl::exit_msg m) {
                say("reporter  {} stops ({})", erl::self(), m.reason);
                erl::exit(m.reason); // a permanent child that returned would be an error
                return true;
            },
            erl::after(1s, [] {
                auto n = sup::count_children("pool"_a);
                say("reporter  pool has {} jobs running", n.active);
                return false;
            }));
        if (done) return;
    }
}

} // namespace

int main(int argc, char** argv) {
    const int seconds = argc > 1 ? std::atoi(argv[1]) : 3;
    // Supervisor reports, shortened to one line each; crash reports are left out (the
    // supervisor's child_terminated report says the same).
    erl::set_log_handler([](const erl::log_event& e) {
        if (e.kind == sup::supervisor_report_kind()) {
            if (e.text.find("child_terminated") != std::string::npos)
                say("  supervisor {}: a child crashed, restarting it ({})", e.name, e.reason);
            else
                say("  supervisor {} report: {}", e.name, e.text);
        } else if (e.kind == erl::atom("application")) {
            say("{}", e.text);
        }
    });

    erl::application app([] {
        sup::flags pool_flags;
        pool_flags.strategy = sup::strategy::simple_one_for_one;
        pool_flags.intensity = 20;
        pool_flags.period = 1s;
        auto pool =
            sup::supervisor_spec("pool"_a, pool_flags, {sup::dynamic_worker<int>("job"_a, job)});
        pool.start = [pool_flags] {
            auto r =
                sup::start_link("pool"_a, pool_flags, {sup::dynamic_worker<int>("job"_a, job)});
            if (r)
                for (int i = 1; i <= 4; ++i)
                    sup::start_child(r.pid(), i);
            return r;
        };
        sup::flags top;
        top.intensity = 3;
        top.period = 5s;
        return sup::start_link(
            "service"_a, top,
            {sup::worker("config"_a, config), pool, sup::worker("reporter"_a, reporter)});
    });

    std::thread timer([&app, seconds] {
        std::this_thread::sleep_for(std::chrono::seconds(seconds));
        say("time is up: stopping the service");
        app.stop();
    });
    int code = app.run();
    timer.join();
    say("exit code {}", code);
    return code;
}
