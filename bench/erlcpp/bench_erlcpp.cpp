// erlcpp side of the actor benchmark suite. Every benchmark mirrors the Erlang peer
// (bench/peers/erlang/peer_erl.erl) step by step and prints the same RESULT line.
//
//   bench_erlcpp pingpong N [-t T]            N round trips between two processes (2N messages)
//   bench_erlcpp ring N [-t T]                503-process thread-ring, token passed N times
//   bench_erlcpp spawn N [-t T]               spawn N processes; each sends one message and exits
//   bench_erlcpp spawn_idle N [-t T]          N processes alive, blocked in receive; RSS per
//   process bench_erlcpp fanin K M [-t T]             K senders each send M messages to one
//   receiver bench_erlcpp call N [-t T]                N erl::call round trips to a gen_server
//   bench_erlcpp call_raw N [-t T]            N request/reply round trips (ref + mailbox mark)
//   bench_erlcpp hibernated N [-t T]          N idle hibernated gen_servers; RSS per server
//   bench_erlcpp skynet N [-t T]              skynet tree with N leaves, 10 children per node
//   bench_erlcpp selective Q I [-t T]         Q unrelated messages queued; I request/reply rounds
//   bench_erlcpp timers N [-t T]              N timers set (all pending at once), then cancelled
//   bench_erlcpp parallel_pingpong P N [-t T] P independent pairs, N round trips each
//   bench_erlcpp etf_encode N FILE            N erl::etf::encode calls cycling over FILE's terms
//   bench_erlcpp etf_decode N FILE            N erl::etf::decode calls on the same terms, encoded
//
// -t T: scheduler threads (default 1). Processes use the runtime's default stack size; nothing
// here tunes the library for a benchmark.
#include <erl/erl.hpp>
#include <erl/etf.hpp>
#include <erl/term.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "bench_common.hpp"

using peer::join;
using peer::kv;

namespace {

const char* const IMPL = "erlcpp";
int g_threads = 1;

struct stop_msg {};
struct done_msg {};

// --- pingpong ------------------------------------------------------------------------------
struct ping_msg {
    erl::pid from;
    std::int64_t k;
};

void pong() {
    for (bool more = true; more;) {
        more = erl::receive(
            [](ping_msg& m) {
                erl::send(m.from, m.k);
                return true;
            },
            [](stop_msg) { return false; });
    }
}

bool ping(const erl::pid& pong_pid, long long n) {
    bool ok = true;
    for (long long k = n; k > 0; --k) {
        erl::send(pong_pid, ping_msg{erl::self(), k});
        ok &= erl::receive([](std::int64_t v) { return v; }) == k;
    }
    return ok;
}

void bench_pingpong(long long n) {
    erl::pid p = erl::spawn(pong);
    ping(p, 1000); // warm-up
    auto t0 = peer::now_ns();
    bool ok = ping(p, n);
    auto t1 = peer::now_ns();
    erl::send(p, stop_msg{});
    if (!ok) {
        std::fprintf(stderr, "pingpong: wrong reply\n");
        std::exit(1);
    }
    double msgs = 2.0 * n;
    peer::result("pingpong", IMPL, n, t1 - t0, msgs, "msgs/s", g_threads,
                 kv("ns_per_msg", (t1 - t0) / msgs));
}

// --- ring ----------------------------------------------------------------------------------
struct next_msg {
    erl::pid next;
};
struct ring_done {
    erl::pid who;
};

void ring_node(erl::pid main_pid) {
    erl::pid next = erl::receive([](next_msg m) { return m.next; });
    for (bool more = true; more;) {
        more = erl::receive(
            [&](std::int64_t t) {
                if (t == 0)
                    erl::send(main_pid, ring_done{erl::self()});
                else
                    erl::send(next, t - 1);
                return true;
            },
            [](stop_msg) { return false; });
    }
}

void bench_ring(long long n) {
    const int P = 503;
    std::vector<erl::pid> pids;
    pids.reserve(P);
    for (int i = 0; i < P; ++i)
        pids.push_back(erl::spawn(ring_node, erl::self()));
    for (int i = 0; i < P; ++i)
        erl::send(pids[i], next_msg{pids[(i + 1) % P]});
    auto t0 = peer::now_ns();
    erl::send(pids[0], std::int64_t(n));
    erl::receive([](ring_done) {});
    auto t1 = peer::now_ns();
    for (auto& p : pids)
        erl::send(p, stop_msg{});
    peer::result("ring", IMPL, n, t1 - t0, (double)n, "passes/s", g_threads,
                 join({kv("ns_per_pass", (t1 - t0) / (double)n), kv("procs", 503LL)}));
}

// --- spawn ---------------------------------------------------------------------------------
void wait_n(long long n) {
    for (long long i = 0; i < n; ++i)
        erl::receive([](done_msg) {});
}

void bench_spawn(long long n) {
    erl::pid me = erl::self();
    auto t0 = peer::now_ns();
    for (long long i = 0; i < n; ++i)
        erl::spawn([me] { erl::send(me, done_msg{}); });
    wait_n(n);
    auto t1 = peer::now_ns();
    peer::result("spawn", IMPL, n, t1 - t0, (double)n, "procs/s", g_threads,
                 kv("ns_per_spawn", (t1 - t0) / (double)n));
}

// --- spawn_idle ----------------------------------------------------------------------------
void bench_spawn_idle(long long n) {
    erl::pid me = erl::self();
    long rss0 = peer::rss_kb();
    auto t0 = peer::now_ns();
    for (long long i = 0; i < n; ++i)
        erl::spawn([me] {
            erl::send(me, done_msg{});
            erl::receive([](stop_msg) {});
        });
    wait_n(n);
    auto t1 = peer::now_ns();
    long rss1 = peer::rss_kb();
    double per = (rss1 - rss0) * 1024.0 / (double)n;
    peer::result("spawn_idle", IMPL, n, t1 - t0, (double)n, "procs/s", g_threads,
                 join({kv("rss_bytes_per_proc", per), kv("procs_alive", (long long)n + 1)}));
    std::_Exit(0); // skip tearing down N blocked processes, as the C++ peers do
}

// --- fanin ---------------------------------------------------------------------------------
void bench_fanin(long long k, long long m) {
    erl::pid me = erl::self();
    long long total = k * m;
    auto t0 = peer::now_ns();
    for (long long s = 0; s < k; ++s)
        erl::spawn([me, m] {
            for (long long i = m; i > 0; --i)
                erl::send(me, std::int64_t(i));
        });
    std::int64_t sum = 0;
    for (long long i = 0; i < total; ++i)
        sum += erl::receive([](std::int64_t v) { return v; });
    auto t1 = peer::now_ns();
    if (sum != k * (m * (m + 1) / 2)) {
        std::fprintf(stderr, "fanin: wrong sum\n");
        std::exit(1);
    }
    peer::result(
        "fanin", IMPL, total, t1 - t0, (double)total, "msgs/s", g_threads,
        join({kv("senders", k), kv("per_sender", m), kv("ns_per_msg", (t1 - t0) / (double)total)}));
}

// --- call ----------------------------------------------------------------------------------
// gen_server does not exist yet: a plain call, as gen_server:call does it minus the monitor.
// The client takes a mailbox mark, makes a ref, sends {self, ref, value} and receives the
// reply carrying that ref.
struct call_req {
    erl::pid from;
    erl::ref tag;
    std::int64_t value;
};
struct call_reply {
    erl::ref tag;
    std::int64_t value;
};

void call_server() {
    for (bool more = true; more;) {
        more = erl::receive(
            [](call_req& r) {
                erl::send(r.from, call_reply{r.tag, r.value});
                return true;
            },
            [](stop_msg) { return false; });
    }
}

std::int64_t call(const erl::pid& server, std::int64_t v) {
    auto mark = erl::mark_mailbox();
    erl::ref tag = erl::make_ref();
    erl::send(server, call_req{erl::self(), tag, v});
    return erl::receive(mark, erl::guard([&](const call_reply& r) { return r.tag == tag; },
                                         [](call_reply r) { return r.value; }));
}

// A gen_server that answers its request, like the Erlang peer's.
struct echo_req {
    using reply_type = std::int64_t;
    std::int64_t v;
};
struct echo_server : erl::gen_server<echo_server> {
    init_result init() { return ok(); }
    std::int64_t handle_call(echo_req r) { return r.v; }
};

void bench_call(long long n) {
    auto server = erl::start_link<echo_server>();
    for (int k = 1000; k > 0; --k)
        erl::call(server, echo_req{k}, erl::infinity); // warm-up
    bool ok = true;
    auto t0 = peer::now_ns();
    for (long long k = n; k > 0; --k)
        ok &= erl::call(server, echo_req{k}, erl::infinity) == k;
    auto t1 = peer::now_ns();
    erl::stop(server);
    if (!ok) {
        std::fprintf(stderr, "call: wrong reply\n");
        std::exit(1);
    }
    peer::result("call", IMPL, n, t1 - t0, (double)n, "calls/s", g_threads,
                 join({kv("ns_per_call", (t1 - t0) / (double)n), kv("variant", "gen_server")}));
}

// --- hibernated ----------------------------------------------------------------------------
struct sleepy_server : erl::gen_server<sleepy_server> {
    init_result init() { return ok(erl::hibernate); }
    std::int64_t handle_call(echo_req r) { return r.v; }
};

void bench_hibernated(long long n) {
    std::vector<erl::server<sleepy_server>> servers;
    servers.reserve(std::size_t(n));
    long rss0 = peer::rss_kb();
    auto t0 = peer::now_ns();
    for (long long i = 0; i < n; ++i)
        servers.push_back(erl::start<sleepy_server>());
    auto t1 = peer::now_ns();
    erl::sleep_for(std::chrono::milliseconds(100)); // let the last ones finish hibernating
    long rss1 = peer::rss_kb();
    double per = (rss1 - rss0) * 1024.0 / (double)n;
    bool ok = erl::call(servers[std::size_t(n / 2)], echo_req{7}) == 7; // they still answer
    if (!ok) {
        std::fprintf(stderr, "hibernated: wrong reply\n");
        std::exit(1);
    }
    peer::result("hibernated", IMPL, n, t1 - t0, (double)n, "servers/s", g_threads,
                 join({kv("rss_bytes_per_server", per), kv("servers_alive", n)}));
    std::_Exit(0); // skip tearing down N servers, as spawn_idle does
}

void bench_call_raw(long long n) {
    erl::pid server = erl::spawn(call_server);
    for (int k = 1000; k > 0; --k)
        call(server, k); // warm-up
    bool ok = true;
    auto t0 = peer::now_ns();
    for (long long k = n; k > 0; --k)
        ok &= call(server, k) == k;
    auto t1 = peer::now_ns();
    erl::send(server, stop_msg{});
    if (!ok) {
        std::fprintf(stderr, "call: wrong reply\n");
        std::exit(1);
    }
    peer::result(
        "call_raw", IMPL, n, t1 - t0, (double)n, "calls/s", g_threads,
        join({kv("ns_per_call", (t1 - t0) / (double)n), kv("variant", "ref_mark_request_reply")}));
}

// --- skynet --------------------------------------------------------------------------------
void skynet(erl::pid parent, std::int64_t num, std::int64_t size, std::int64_t div) {
    if (size == 1) {
        erl::send(parent, num);
        return;
    }
    erl::pid me = erl::self();
    std::int64_t sub = size / div;
    for (std::int64_t i = 0; i < div; ++i)
        erl::spawn(skynet, me, num + i * sub, sub, div);
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < div; ++i)
        sum += erl::receive([](std::int64_t x) { return x; });
    erl::send(parent, sum);
}

long long skynet_procs(long long size, long long div) {
    return size == 1 ? 1 : 1 + div * skynet_procs(size / div, div);
}

void bench_skynet(long long n) {
    auto t0 = peer::now_ns();
    erl::spawn(skynet, erl::self(), std::int64_t(0), std::int64_t(n), std::int64_t(10));
    std::int64_t sum = erl::receive([](std::int64_t s) { return s; });
    auto t1 = peer::now_ns();
    if (sum != (std::int64_t)n * (n - 1) / 2) {
        std::fprintf(stderr, "skynet: wrong sum\n");
        std::exit(1);
    }
    long long procs = skynet_procs(n, 10);
    peer::result("skynet", IMPL, n, t1 - t0, (double)procs, "procs/s", g_threads,
                 join({kv("total_procs", procs), kv("sum", (long long)sum)}));
}

// --- selective -----------------------------------------------------------------------------
// Q unrelated messages sit in the caller's mailbox; each round makes a ref, sends a request to
// an echo process and receives the one reply that carries the ref. With a receive mark (the
// BEAM's recv_mark) the round never looks at the Q queued messages.
struct junk_msg {
    std::int64_t i;
};
struct sel_req {
    erl::pid from;
    erl::ref tag;
};
struct sel_reply {
    erl::ref tag;
};

void sel_server() {
    for (bool more = true; more;) {
        more = erl::receive(
            [](sel_req& r) {
                erl::send(r.from, sel_reply{r.tag});
                return true;
            },
            [](stop_msg) { return false; });
    }
}

void sel_round(const erl::pid& server) {
    auto mark = erl::mark_mailbox();
    erl::ref tag = erl::make_ref();
    erl::send(server, sel_req{erl::self(), tag});
    erl::receive(mark, erl::guard([&](const sel_reply& r) { return r.tag == tag; },
                                  [](const sel_reply&) {}));
}

void bench_selective(long long queued, long long rounds) {
    erl::pid server = erl::spawn(sel_server);
    erl::pid me = erl::self();
    for (long long i = 0; i < queued; ++i)
        erl::send(me, junk_msg{i});
    for (int i = 0; i < 1000; ++i)
        sel_round(server); // warm-up
    auto t0 = peer::now_ns();
    for (long long i = 0; i < rounds; ++i)
        sel_round(server);
    auto t1 = peer::now_ns();
    erl::send(server, stop_msg{});
    // the queued messages are all still there
    long long left = 0;
    while (erl::receive([](junk_msg) { return true; },
                        erl::after(std::chrono::milliseconds(0), [] { return false; })))
        ++left;
    if (left != queued) {
        std::fprintf(stderr, "selective: lost messages\n");
        std::exit(1);
    }
    peer::result("selective", IMPL, queued, t1 - t0, (double)rounds, "rounds/s", g_threads,
                 join({kv("queued", queued), kv("rounds", rounds),
                       kv("ns_per_round", (t1 - t0) / (double)rounds)}));
}

// --- timers --------------------------------------------------------------------------------
// N timers (one hour, to self) are started, so N are pending at once, then all are cancelled in
// the order they were started. rate = timers set and cancelled per second.
struct tick_msg {};

void bench_timers(long long n) {
    erl::pid me = erl::self();
    std::vector<erl::ref> refs;
    refs.reserve(n);
    auto t0 = peer::now_ns();
    for (long long i = 0; i < n; ++i)
        refs.push_back(erl::send_after(std::chrono::hours(1), me, tick_msg{}));
    auto t1 = peer::now_ns();
    long long cancelled = 0;
    for (auto& r : refs)
        cancelled += erl::cancel_timer(r) ? 1 : 0;
    auto t2 = peer::now_ns();
    if (cancelled != n) {
        std::fprintf(stderr, "timers: %lld of %lld cancelled\n", cancelled, n);
        std::exit(1);
    }
    peer::result(
        "timers", IMPL, n, t2 - t0, (double)n, "timers/s", g_threads,
        join({kv("ns_per_timer", (t2 - t0) / (double)n), kv("ns_per_set", (t1 - t0) / (double)n),
              kv("ns_per_cancel", (t2 - t1) / (double)n)}));
}

// --- parallel_pingpong ---------------------------------------------------------------------
void pp_pair(erl::pid main_pid, long long n) {
    erl::pid p = erl::spawn(pong);
    bool ok = ping(p, n);
    erl::send(p, stop_msg{});
    if (!ok) {
        std::fprintf(stderr, "parallel_pingpong: wrong reply\n");
        std::exit(1);
    }
    erl::send(main_pid, done_msg{});
}

void bench_parallel_pingpong(long long pairs, long long n) {
    erl::pid me = erl::self();
    auto t0 = peer::now_ns();
    for (long long i = 0; i < pairs; ++i)
        erl::spawn(pp_pair, me, n);
    wait_n(pairs);
    auto t1 = peer::now_ns();
    double msgs = 2.0 * pairs * n;
    peer::result("parallel_pingpong", IMPL, n, t1 - t0, msgs, "msgs/s", g_threads,
                 join({kv("pairs", pairs), kv("ns_per_msg", (t1 - t0) / msgs)}));
}

// --- etf_encode / etf_decode ----------------------------------------------------------------
// The message mix (bench/etf_mix.txt): one term per line, '%' lines are comments; the atoms
// '$pid' and '$ref' become the remote pid and reference that peer_erl.erl builds. No runtime:
// the codec runs on the main thread, as term_to_binary runs in the calling Erlang process.
erl::term etf_subst(const erl::term& t) {
    static const erl::atom node("bench@host.example");
    if (t.is_atom() && t.atom_name() == "$pid") return erl::term::pid(node, 4711, 0, 1712345678);
    if (t.is_atom() && t.atom_name() == "$ref") {
        const std::uint32_t w[3] = {123456, 2345678901u, 3456789012u};
        return erl::term::reference(node, 1712345678, w);
    }
    if (t.is_tuple() || t.is_cons()) {
        std::vector<erl::term> v;
        for (const auto& e : t.elements())
            v.push_back(etf_subst(e));
        return t.is_tuple() ? erl::term::tuple_from(std::move(v))
                            : erl::term::list_from(std::move(v), etf_subst(t.tail()));
    }
    if (t.is_map()) {
        std::vector<std::pair<erl::term, erl::term>> v;
        for (const auto& [k, x] : t.map_entries())
            v.emplace_back(etf_subst(k), etf_subst(x));
        return erl::term::map_from(std::move(v));
    }
    return t;
}

std::vector<erl::term> etf_mix(const std::string& file) {
    std::ifstream in(file);
    if (!in) {
        std::fprintf(stderr, "etf: cannot read %s\n", file.c_str());
        std::exit(2);
    }
    std::vector<erl::term> mix;
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '%') mix.push_back(etf_subst(erl::term::parse(line)));
    if (mix.empty()) {
        std::fprintf(stderr, "etf: no terms in %s\n", file.c_str());
        std::exit(2);
    }
    return mix;
}

void etf_result(const char* name, long long n, std::int64_t ns, long long bytes,
                const std::vector<erl::term>& mix) {
    long long mix_bytes = 0;
    for (const auto& t : mix)
        mix_bytes += (long long)erl::etf::encode(t).size();
    peer::result(name, IMPL, n, ns, (double)n, "terms/s", g_threads,
                 join({kv("ns_per_term", ns / (double)n), kv("mb_per_s", bytes * 1e3 / (double)ns),
                       kv("bytes", bytes), kv("mix_terms", (long long)mix.size()),
                       kv("mix_bytes", mix_bytes)}));
}

long long etf_encode_loop(const std::vector<erl::term>& mix, long long n) {
    long long bytes = 0;
    for (std::size_t j = 0; n > 0; --n) {
        bytes += (long long)erl::etf::encode(mix[j]).size();
        if (++j == mix.size()) j = 0;
    }
    return bytes;
}

volatile int g_etf_sink; // keeps each decoded term observed

long long etf_decode_loop(const std::vector<std::vector<std::uint8_t>>& bins, long long n) {
    long long bytes = 0;
    for (std::size_t j = 0; n > 0; --n) {
        erl::term t = erl::etf::decode(bins[j]);
        g_etf_sink = int(t.kind());
        bytes += (long long)bins[j].size();
        if (++j == bins.size()) j = 0;
    }
    return bytes;
}

void bench_etf_encode(long long n, const std::string& file) {
    auto mix = etf_mix(file);
    etf_encode_loop(mix, (long long)mix.size()); // warm-up: one pass
    auto t0 = peer::now_ns();
    long long bytes = etf_encode_loop(mix, n);
    auto t1 = peer::now_ns();
    etf_result("etf_encode", n, t1 - t0, bytes, mix);
}

void bench_etf_decode(long long n, const std::string& file) {
    auto mix = etf_mix(file);
    std::vector<std::vector<std::uint8_t>> bins;
    for (const auto& t : mix) {
        bins.push_back(erl::etf::encode(t));
        if (erl::etf::decode(bins.back()) != t) { // round trip, or fail
            std::fprintf(stderr, "etf_decode: %s does not round-trip\n", t.to_string().c_str());
            std::exit(1);
        }
    }
    etf_decode_loop(bins, (long long)bins.size()); // warm-up: one pass
    auto t0 = peer::now_ns();
    long long bytes = etf_decode_loop(bins, n);
    auto t1 = peer::now_ns();
    etf_result("etf_decode", n, t1 - t0, bytes, mix);
}

} // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-t" && i + 1 < argc)
            g_threads = std::atoi(argv[++i]);
        else
            args.push_back(a);
    }
    if (args.size() < 2 || g_threads < 1)
        peer::usage("usage: bench_erlcpp <pingpong|ring|spawn|spawn_idle|call|skynet|timers> N "
                    "[-t T]\n       bench_erlcpp fanin K M | selective Q I | "
                    "parallel_pingpong P N [-t T]\n");
    const std::string b = args[0];
    const long long a1 = std::atoll(args[1].c_str());
    const long long a2 = args.size() > 2 ? std::atoll(args[2].c_str()) : 0;
    if (b == "etf_encode" || b == "etf_decode") { // the codec needs no runtime
        if (args.size() < 3) peer::usage("usage: bench_erlcpp etf_encode|etf_decode N FILE\n");
        if (b == "etf_encode")
            bench_etf_encode(a1, args[2]);
        else
            bench_etf_decode(a1, args[2]);
        return 0;
    }
    bool known = true;
    erl::runtime rt({.schedulers = unsigned(g_threads)});
    rt.run([&] {
        if (b == "pingpong")
            bench_pingpong(a1);
        else if (b == "ring")
            bench_ring(a1);
        else if (b == "spawn")
            bench_spawn(a1);
        else if (b == "spawn_idle")
            bench_spawn_idle(a1);
        else if (b == "fanin")
            bench_fanin(a1, a2 ? a2 : 10000);
        else if (b == "call")
            bench_call(a1);
        else if (b == "call_raw")
            bench_call_raw(a1);
        else if (b == "hibernated")
            bench_hibernated(a1);
        else if (b == "skynet")
            bench_skynet(a1);
        else if (b == "selective")
            bench_selective(a1, a2 ? a2 : 1000000);
        else if (b == "timers")
            bench_timers(a1);
        else if (b == "parallel_pingpong")
            bench_parallel_pingpong(a1, a2 ? a2 : 1000000);
        else
            known = false;
    });
    if (!known) peer::usage("unknown benchmark\n");
    return 0;
}
