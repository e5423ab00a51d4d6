// erl_client: an erlcpp node that uses an Erlang node's services: it calls a gen_server there
// (application_controller), asks rex for a pid, links to that Erlang process and reports the
// exit signal when the Erlang node goes away (noconnection).
//
//   erl -name e@127.0.0.1 -setcookie secret
//   erl_client --node e@127.0.0.1 --cookie secret [--name client@127.0.0.1] [--wait SECONDS]
#include <erl/erl.hpp>

#include <cstdio>
#include <string>

using namespace erl::literals;
using namespace std::chrono_literals;
using erl::term;

int main(int argc, char** argv) {
    erl::distribution_options dist;
    dist.name = "client@127.0.0.1";
    std::string peer = "e@127.0.0.1";
    int wait_seconds = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view a = argv[i];
        if (a == "--node") {
            peer = argv[i + 1];
        } else if (a == "--cookie") {
            dist.cookie = argv[i + 1];
        } else if (a == "--name") {
            dist.name = argv[i + 1];
        } else if (a == "--wait") {
            wait_seconds = std::stoi(argv[i + 1]);
        } else {
            fmt::print(stderr, "usage: erl_client --node NODE --cookie COOKIE [--name NAME] "
                               "[--wait SECONDS]\n");
            return 2;
        }
    }
    dist.long_names = dist.name.find('.') != std::string::npos;
    int status = 1;
    try {
        erl::runtime rt({.distribution = dist});
        rt.run([&] {
            erl::atom node(peer);
            if (!erl::connect_node(node)) {
                fmt::print("cannot connect to {}\n", node);
                return;
            }
            fmt::print("connected to {}\n", node);
            // gen_server:call({application_controller, Node}, which_applications)
            term apps = erl::call(erl::remote_name{"application_controller"_a, node},
                                  term("which_applications"_a));
            fmt::print("applications running there: {}\n", apps);
            // The old rex protocol: {self(), {call, M, F, A, GroupLeader}} -> {rex, Result}.
            erl::send(erl::remote_name{"rex"_a, node},
                      term::tuple_from({term(erl::self()),
                                        term::parse("{call, erlang, whereis, [init], user}")}));
            term init_pid =
                erl::receive(erl::guard([](const term& t) { return t.is_tagged_tuple("rex"_a, 2); },
                                        [](term t) { return t[1]; }));
            fmt::print("init on {} is {}\n", node, init_pid);
            erl::process_flag(erl::trap_exit, true);
            erl::link(init_pid.as_pid());
            fmt::print("linked to {}; waiting for it to go (stop the Erlang node)\n", init_pid);
            std::fflush(stdout);
            auto wait = wait_seconds > 0 ? erl::timeout(std::chrono::seconds(wait_seconds))
                                         : erl::timeout(erl::infinity);
            erl::receive(
                [](const erl::exit_msg& m) {
                    fmt::print("exit signal from {}: {}\n", m.from, m.reason);
                },
                wait.is_infinite() ? erl::after(erl::infinity) : erl::after(wait.duration()));
            status = 0;
        });
    } catch (const std::exception& e) {
        fmt::print(stderr, "erl_client: {}\n", e.what());
        return 1;
    }
    return status;
}
