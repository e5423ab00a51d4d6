// pingpong: two processes bounce a counter N times.
//   pingpong [N=1000000] [SCHEDULERS=1]
#include <erl/erl.hpp>

#include <chrono>
#include <cstdlib>

struct ball {
    erl::pid from;
    long left;
};

int main(int argc, char** argv) {
    long n = argc > 1 ? std::atol(argv[1]) : 1000000;
    unsigned schedulers = argc > 2 ? unsigned(std::atoi(argv[2])) : 1;
    erl::runtime rt({.schedulers = schedulers});
    rt.run([n] {
        auto player = [] {
            for (;;) {
                ball b = erl::receive([](ball b) { return b; });
                if (b.left == 0) return;
                erl::send(b.from, ball{erl::self(), b.left - 1});
                if (b.left == 1) return;
            }
        };
        erl::pid a = erl::spawn(player);
        auto t0 = std::chrono::steady_clock::now();
        erl::pid b = erl::spawn([a, n, player] {
            erl::send(a, ball{erl::self(), n});
            player();
        });
        auto done = erl::monitor(b);
        erl::receive(erl::guard([done](const erl::down_msg& d) { return d.id == done; },
                                [](erl::down_msg) {}));
        std::chrono::duration<double> s = std::chrono::steady_clock::now() - t0;
        fmt::print("pingpong: {} messages in {:.3f} s ({:.1f} ns/message)\n", n, s.count(),
                   s.count() * 1e9 / double(n));
    });
}
