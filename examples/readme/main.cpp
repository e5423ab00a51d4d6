// The example of README.md, kept compiling.
#include <erl/erl.hpp>

struct ping {
    erl::pid from;
    int n;
};
struct pong {
    int n;
};

int main() {
    erl::runtime rt; // one scheduler thread per core
    rt.run([] {      // the first process
        erl::pid echo = erl::spawn([] {
            for (;;)
                erl::receive(
                    [](ping p) { erl::send(p.from, pong{p.n + 1}); },
                    erl::after(std::chrono::seconds(1), [] { erl::exit(erl::atoms::normal); }));
        });
        erl::monitor(echo); // a down_msg will say when it ends
        erl::send(echo, ping{erl::self(), 41});
        erl::receive([](pong p) { fmt::print("got {}\n", p.n); }); // got 42
        erl::receive([](erl::down_msg d) { fmt::print("{} ended: {}\n", d.process, d.reason); });
    });
}
