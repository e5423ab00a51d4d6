// links: a crash propagates through a chain of linked workers and is trapped and reported by
// a supervisor-like process; a monitor watches from the side.
//   links [CHAIN=5]
#include <erl/erl.hpp>

#include <cstdlib>
#include <stdexcept>

int main(int argc, char** argv) {
    int chain = argc > 1 ? std::atoi(argv[1]) : 5;
    erl::set_log_handler([](const erl::log_event& e) { fmt::print("  [log] {}\n", e.text); });
    erl::runtime rt;
    rt.run([chain] {
        erl::process_flag(erl::trap_exit, true);
        fmt::print("{} traps exits and links to a chain of {} workers\n", erl::self(), chain);
        erl::pid prev = erl::self();
        erl::pid last;
        for (int i = 0; i < chain; ++i) {
            erl::pid up = prev;
            last = erl::spawn([up, i] {
                erl::link(up);
                erl::receive([i](std::string cmd) {
                    if (cmd == "crash")
                        throw std::runtime_error(fmt::format("worker {} divided by zero", i));
                });
            });
            fmt::print("  worker {} is {}\n", i, last);
            prev = last;
        }
        erl::pid watcher = erl::spawn([last] {
            erl::monitor(last);
            erl::receive([](erl::down_msg d) {
                fmt::print("watcher: monitor saw {} go down: {}\n", d.process, d.reason);
            });
        });
        (void)watcher;
        erl::sleep_for(std::chrono::milliseconds(20));
        fmt::print("telling the last worker to crash...\n");
        erl::send(last, std::string("crash"));
        erl::receive([](erl::exit_msg m) {
            fmt::print("trapped: {} exited with {}\n", m.from, m.reason);
            fmt::print("the whole chain went down with it; the trapping process lives on\n");
        });
    });
}
