// Distribution benchmarks (issue 9), erlcpp side: two nodes on the loopback, one responding and
// one driving. bench/peers/erlang/dist_peer.erl is the Erlang side, step by step the same, so
// each role can be played by either implementation (bench/run: erlcpp <-> erlcpp,
// erlcpp -> Erlang, Erlang <-> Erlang).
//
//   bench_dist respond --name NODE --cookie C [--epmd-port P] [-t T]
//       Registers `pong`, a process that answers each {From, N} with {pong, N} sent to From,
//       and `echo`, a term gen_server whose handle_call returns the request. Prints `ready`
//       once both are registered and the node is in EPMD; runs until SIGTERM or SIGINT (then
//       exits with status 0).
//   bench_dist drive --name NODE --peer NODE --cookie C [--epmd-port P] [-t T] [--impl IMPL]
//                    pingpong N | pipelined N W | call N
//       Connects to the responder NODE, warms up (1,000 rounds), then measures:
//       pingpong N     one process sends {self(), I} to {pong, Peer} and waits for {pong, I},
//                      N times: round trips/s;
//       pipelined N W  the same N requests with W of them in flight: the first W are sent at
//                      once, each reply sends the next; replies/s (they must come in order);
//       call N         N erl::call({echo, Peer}, I) (a gen_server call: monitor, request, reply
//                      through the alias, demonitor): calls/s.
//       Prints one RESULT line (bench/peers/README.md); IMPL (default erlcpp) is its impl=,
//       naming the pair (erlcpp_erlang: this driver against an Erlang responder).
//
// -t T: scheduler threads (default 1). --epmd-port 0 (the default) takes $ERL_EPMD_PORT, else
// 4369; no EPMD is ever started here (bench/run starts one per run).
#include <erl/erl.hpp>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "bench_common.hpp"

using namespace erl::literals;
using erl::term;
using peer::join;
using peer::kv;

namespace {

constexpr const char* usage_text =
    "usage: bench_dist respond --name NODE --cookie C [--epmd-port P] [-t T]\n"
    "       bench_dist drive --name NODE --peer NODE --cookie C [--epmd-port P] [-t T]\n"
    "                  [--impl IMPL] pingpong N | pipelined N W | call N\n";

constexpr long long warmup_rounds = 1000;
constexpr auto reply_timeout = std::chrono::seconds(10);

struct options {
    std::string role;
    erl::distribution_options dist;
    std::string peer;
    std::string impl = "erlcpp";
    int threads = 1;
    std::vector<std::string> args; // the benchmark and its sizes
};

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "bench_dist: %s\n", what.c_str());
    std::exit(1);
}

// --- the responder -------------------------------------------------------------------------
void pong_loop() {
    for (;;)
        erl::receive(
            erl::guard([](const term& t) { return t.is_tuple(2) && t[0].is_pid(); },
                       [](const term& t) {
                           erl::send(t[0].as_pid(), term::tuple_from({term("pong"_a), t[1]}));
                       }),
            [](erl::any_message) {});
}

struct echo_server : erl::gen_server<echo_server> {
    term handle_call(const term& request) { return request; }
};

int respond(const options& o) {
    // SIGINT/SIGTERM end main's wait; the runtime's destructor stops everything in order.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); // the scheduler threads inherit this
    std::optional<erl::runtime> rt;
    try {
        rt.emplace(erl::runtime_options{.schedulers = unsigned(o.threads), .distribution = o.dist});
    } catch (const std::exception& e) {
        fail(e.what());
    }
    // Both names are registered before `ready` is printed.
    std::promise<void> registered;
    rt->spawn([&registered] {
        erl::register_name("pong"_a, erl::spawn(pong_loop));
        erl::start<echo_server>(erl::start_options{.name = "echo"_a});
        registered.set_value();
    });
    registered.get_future().wait();
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop_signals, &sig);
    rt.reset();
    return 0;
}

// --- the driver ----------------------------------------------------------------------------
term request(std::int64_t i) {
    return term::tuple_from({term(erl::self()), term(i)});
}

// Waits for {pong, I}; false after reply_timeout.
bool await_pong(std::int64_t i) {
    return erl::receive(erl::guard(
                            [i](const term& t) {
                                return t.is_tagged_tuple("pong"_a, 2) && t[1].is_integer() &&
                                       t[1].as_int64() == i;
                            },
                            [](const term&) { return true; }),
                        erl::after(reply_timeout, [] { return false; }));
}

bool pingpong(const erl::remote_name& pong, long long n) {
    for (std::int64_t i = 1; i <= n; ++i) {
        erl::send(pong, request(i));
        if (!await_pong(i)) return false;
    }
    return true;
}

// N requests, W in flight: the replies must come back in order (one connection keeps it).
bool pipelined(const erl::remote_name& pong, long long n, long long w) {
    std::int64_t sent = 0;
    while (sent < std::min(n, w))
        erl::send(pong, request(++sent));
    for (std::int64_t got = 1; got <= n; ++got) {
        if (!await_pong(got)) return false;
        if (sent < n) erl::send(pong, request(++sent));
    }
    return true;
}

bool calls(const erl::remote_name& echo, long long n) {
    for (std::int64_t i = 1; i <= n; ++i) {
        term r = erl::call(echo, term(i));
        if (!r.is_integer() || r.as_int64() != i) return false;
    }
    return true;
}

void drive(const options& o, const std::string& bench, long long n, long long w) {
    const erl::atom peer_node(o.peer);
    if (!erl::connect_node(peer_node)) fail("cannot connect to " + o.peer);
    const erl::remote_name pong{"pong"_a, peer_node};
    const erl::remote_name echo{"echo"_a, peer_node};
    auto run = [&](long long count) {
        if (bench == "pingpong") return pingpong(pong, count);
        if (bench == "pipelined") return pipelined(pong, count, w);
        return calls(echo, count);
    };
    if (!run(warmup_rounds)) fail(bench + ": no reply or a wrong one during the warm-up");
    auto t0 = peer::now_ns();
    bool ok = run(n);
    auto t1 = peer::now_ns();
    if (!ok) fail(bench + ": no reply or a wrong one");
    double ns = double(t1 - t0);
    std::string extra = join({kv("us_per_op", ns / 1e3 / double(n)), kv("peer", o.peer.c_str())});
    if (bench == "pingpong") {
        peer::result("dist_pingpong", o.impl.c_str(), n, t1 - t0, double(n), "rt/s", o.threads,
                     join({extra, kv("msgs_per_s", 2e9 * double(n) / ns)}));
    } else if (bench == "pipelined") {
        peer::result("dist_pipelined", o.impl.c_str(), n, t1 - t0, double(n), "msgs/s", o.threads,
                     join({extra, kv("window", w)}));
    } else {
        peer::result("dist_call", o.impl.c_str(), n, t1 - t0, double(n), "calls/s", o.threads,
                     join({extra, kv("variant", "gen_server")}));
    }
}

int drive_main(const options& o) {
    if (o.peer.empty() || o.args.size() < 2) peer::usage(usage_text);
    const std::string& bench = o.args[0];
    const long long n = std::atoll(o.args[1].c_str());
    const long long w = o.args.size() > 2 ? std::atoll(o.args[2].c_str()) : 0;
    if ((bench != "pingpong" && bench != "pipelined" && bench != "call") || n < 1 ||
        (bench == "pipelined" && w < 1))
        peer::usage(usage_text);
    try {
        erl::runtime rt({.schedulers = unsigned(o.threads), .distribution = o.dist});
        rt.run([&] { drive(o, bench, n, w); });
    } catch (const std::exception& e) {
        fail(e.what());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    options o;
    o.dist.start_epmd = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        bool has_value = i + 1 < argc;
        if (a == "--name" && has_value) {
            o.dist.name = argv[++i];
            o.dist.long_names = o.dist.name.find('.') != std::string::npos;
        } else if (a == "--cookie" && has_value) {
            o.dist.cookie = argv[++i];
        } else if (a == "--epmd-port" && has_value) {
            o.dist.epmd_port = std::uint16_t(std::atoi(argv[++i]));
        } else if (a == "--peer" && has_value) {
            o.peer = argv[++i];
        } else if (a == "--impl" && has_value) {
            o.impl = argv[++i];
        } else if (a == "-t" && has_value) {
            o.threads = std::atoi(argv[++i]);
        } else if (o.role.empty()) {
            o.role = a;
        } else {
            o.args.push_back(a);
        }
    }
    if (o.dist.name.empty() || !o.dist.cookie || o.threads < 1) peer::usage(usage_text);
    if (o.role == "respond") return respond(o);
    if (o.role == "drive") return drive_main(o);
    peer::usage(usage_text);
}
