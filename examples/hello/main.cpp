// hello: spawn a process, send it a message, receive its answer.
//   hello [NAME]
#include <erl/erl.hpp>

#include <string>

struct greet {
    erl::pid from;
    std::string name;
};
struct greeting {
    std::string text;
};

int main(int argc, char** argv) {
    std::string name = argc > 1 ? argv[1] : "world";
    erl::runtime rt;
    rt.run([&] {
        erl::pid greeter = erl::spawn([] {
            erl::receive([](greet g) { erl::send(g.from, greeting{"hello, " + g.name + "!"}); });
        });
        erl::send(greeter, greet{erl::self(), name});
        erl::receive([&](greeting g) { fmt::print("{} says: {}\n", greeter, g.text); },
                     erl::after(std::chrono::seconds(1), [] { fmt::print("no answer\n"); }));
    });
}
