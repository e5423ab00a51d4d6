#include <erl/erl.hpp>

int main() {
    erl::runtime rt({.schedulers = 1});
    int got = 0;
    rt.run([&] {
        erl::pid child =
            erl::spawn([] { erl::receive([](erl::pid from) { erl::send(from, 42); }); });
        erl::send(child, erl::self());
        got = erl::receive([](int v) { return v; });
    });
    fmt::print("consumer: {}\n", got == 42 ? "ok" : "wrong answer");
    return got == 42 ? 0 : 1;
}
