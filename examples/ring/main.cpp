// ring: the benchmarks-game thread-ring. 503 processes in a ring pass a token N times; the
// process holding it when it reaches zero prints its number.
//   ring [N=10000000] [PROCESSES=503] [SCHEDULERS=1]
#include <erl/erl.hpp>

#include <chrono>
#include <cstdlib>
#include <vector>

struct token {
    long value;
};
struct next_is {
    erl::pid next;
};

int main(int argc, char** argv) {
    long n = argc > 1 ? std::atol(argv[1]) : 10000000;
    int size = argc > 2 ? std::atoi(argv[2]) : 503;
    unsigned schedulers = argc > 3 ? unsigned(std::atoi(argv[3])) : 1;
    erl::runtime rt({.schedulers = schedulers});
    rt.run([n, size] {
        erl::pid main = erl::self();
        std::vector<erl::pid> ring;
        for (int i = 1; i <= size; ++i)
            ring.push_back(erl::spawn([i, main] {
                erl::pid next = erl::receive([](next_is m) { return m.next; });
                for (;;) {
                    long v = erl::receive([](token t) { return t.value; });
                    if (v == 0) {
                        erl::send(main, i);
                        // Stop the others: a negative token ends every process it reaches.
                        erl::send(next, token{-1});
                        return;
                    }
                    if (v < 0) {
                        erl::send(next, token{-1});
                        return;
                    }
                    erl::send(next, token{v - 1});
                }
            }));
        for (int i = 0; i < size; ++i)
            erl::send(ring[i], next_is{ring[(i + 1) % size]});
        auto t0 = std::chrono::steady_clock::now();
        erl::send(ring[0], token{n});
        int holder = erl::receive([](int who) { return who; });
        std::chrono::duration<double> s = std::chrono::steady_clock::now() - t0;
        fmt::print("ring of {}: token passed {} times, last held by process {}\n", size, n, holder);
        fmt::print("{:.3f} s ({:.1f} ns/pass)\n", s.count(), s.count() * 1e9 / double(n));
    });
}
