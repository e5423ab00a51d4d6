// node_kv: an erlcpp node in an Erlang cluster, serving a key-value gen_server named `kv` that
// Erlang code calls like any other:
//
//   node_kv --name kv@127.0.0.1 --cookie secret
//   erl -name e@127.0.0.1 -setcookie secret
//   1> gen_server:call({kv, 'kv@127.0.0.1'}, {put, a, 1}).      % ok
//   2> gen_server:call({kv, 'kv@127.0.0.1'}, {get, a}).         % {ok,1}
//   3> gen_server:cast({kv, 'kv@127.0.0.1'}, {put, b, 2}).      % ok
//   4> gen_server:call({kv, 'kv@127.0.0.1'}, keys).             % [a,b]
//   5> erpc:call('kv@127.0.0.1', kv, size, []).                 % 2
//
// Prints `ready` once registered with EPMD; exits cleanly on SIGINT/SIGTERM.
#include <erl/erl.hpp>

#include <csignal>
#include <cstdio>
#include <map>
#include <string>

using namespace erl::literals;
using erl::term;

namespace {

std::atomic<std::size_t> entries{0}; // for the rpc function

struct kv : erl::gen_server<kv> {
    std::map<term, term> data;

    // {put, K, V} -> ok; {get, K} -> {ok, V} | not_found; {delete, K} -> ok; keys -> [K]
    term handle_call(const term& req) {
        if (req.is_tagged_tuple("put"_a, 3)) {
            data[req[1]] = req[2];
        } else if (req.is_tagged_tuple("get"_a, 2)) {
            auto it = data.find(req[1]);
            if (it == data.end()) return term("not_found"_a);
            return term::tuple_from({term("ok"_a), it->second});
        } else if (req.is_tagged_tuple("delete"_a, 2)) {
            data.erase(req[1]);
        } else if (req.is_atom("keys"_a)) {
            std::vector<term> keys;
            for (auto& [k, v] : data)
                keys.push_back(k);
            return term::list_from(std::move(keys));
        } else {
            return term::tuple_from({term("error"_a), term("bad_request"_a)});
        }
        entries = data.size();
        return term("ok"_a);
    }
    // {put, K, V}
    void handle_cast(const term& msg) {
        if (msg.is_tagged_tuple("put"_a, 3)) data[msg[1]] = msg[2];
        entries = data.size();
    }
};

} // namespace

int main(int argc, char** argv) {
    erl::distribution_options dist;
    dist.name = "kv@127.0.0.1";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view a = argv[i];
        if (a == "--name") {
            dist.name = argv[i + 1];
            dist.long_names = dist.name.find('.') != std::string::npos;
        } else if (a == "--cookie") {
            dist.cookie = argv[i + 1];
        } else {
            fmt::print(stderr, "usage: node_kv --name NAME --cookie COOKIE\n");
            return 2;
        }
    }
    // SIGINT/SIGTERM end main's wait; the runtime's destructor stops everything in order.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); // the scheduler threads inherit this

    erl::register_rpc("kv"_a, "size"_a,
                      [](const std::vector<term>&) { return term(std::int64_t(entries.load())); });
    std::optional<erl::runtime> rt;
    try {
        rt.emplace(erl::runtime_options{.distribution = dist});
    } catch (const std::exception& e) {
        fmt::print(stderr, "node_kv: {}\n", e.what());
        return 1;
    }
    rt->spawn([] { erl::start<kv>(erl::start_options{.name = "kv"_a}); });
    fmt::print("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    rt.reset();
    return 0;
}
