// CAF 0.17 peers: event-based actors on CAF's default work-stealing scheduler.
//
//   peer_caf pingpong N [-t T]        N round trips between two event-based actors
//   peer_caf ring N [-t T]            503 event-based actors, token passed N times
//   peer_caf spawn N [-t T]           an actor spawns N actors; each sends "done" and exits
//   peer_caf spawn_idle N [-t T]      N actors alive, waiting for a message; RSS per actor
//   peer_caf fanin K M [-t T]         K sender actors send M messages each to one receiver
//   peer_caf call N [-t T]            request(...).then(...) round trips, event-based client
//   peer_caf call_blocking N [-t T]   scoped_actor request(...).receive(...) round trips
//   peer_caf skynet N [-t T]          skynet tree of stateful event-based actors
//   peer_caf parallel_pingpong P N [-t T]  P independent ping/pong pairs, N round trips each
//
// -t T sets scheduler.max-threads (default: CAF's default, hardware concurrency).
#include "caf/all.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_common.hpp"

using namespace caf;
using peer::join;
using peer::kv;

using done_atom = atom_constant<atom("done")>;
using ready_atom = atom_constant<atom("ready")>;
using stop_atom = atom_constant<atom("stop")>;

static const char* IMPL = "caf";
static int g_threads = 0;

// --- pingpong ----------------------------------------------------------------
behavior pong_actor(event_based_actor* self) {
    return {[=](int64_t x) { self->send(actor_cast<actor>(self->current_sender()), x); }};
}

behavior ping_actor(event_based_actor* self, actor pong, int64_t n, actor reporter) {
    self->send(pong, n);
    return {[=](int64_t x) {
        if (x <= 1) {
            self->send(reporter, done_atom::value);
            self->quit();
        } else {
            self->send(pong, x - 1);
        }
    }};
}

static void bench_pingpong(actor_system& sys, long long n) {
    scoped_actor me{sys};
    auto pong = sys.spawn(pong_actor);
    sys.spawn(ping_actor, pong, int64_t{10000}, actor_cast<actor>(me)); // warm-up
    me->receive([](done_atom) {});
    auto t0 = peer::now_ns();
    sys.spawn(ping_actor, pong, int64_t{n}, actor_cast<actor>(me));
    me->receive([](done_atom) {});
    auto t1 = peer::now_ns();
    me->send_exit(pong, exit_reason::user_shutdown);
    double msgs = 2.0 * n;
    peer::result("pingpong", IMPL, n, t1 - t0, msgs, "msgs/s", g_threads,
                 join({kv("ns_per_msg", (t1 - t0) / msgs), kv("variant", "event_based")}));
}

static void bench_parallel_pingpong(actor_system& sys, long long pairs, long long n) {
    scoped_actor me{sys};
    std::vector<actor> pongs;
    auto t0 = peer::now_ns();
    for (long long i = 0; i < pairs; ++i) {
        pongs.push_back(sys.spawn(pong_actor));
        sys.spawn(ping_actor, pongs.back(), int64_t{n}, actor_cast<actor>(me));
    }
    for (long long i = 0; i < pairs; ++i)
        me->receive([](done_atom) {});
    auto t1 = peer::now_ns();
    for (auto& p : pongs)
        me->send_exit(p, exit_reason::user_shutdown);
    double msgs = 2.0 * pairs * n;
    peer::result("parallel_pingpong", IMPL, n, t1 - t0, msgs, "msgs/s", g_threads,
                 join({kv("pairs", pairs), kv("ns_per_msg", (t1 - t0) / msgs),
                       kv("variant", "event_based")}));
}

// --- ring --------------------------------------------------------------------
behavior ring_node(event_based_actor* self, actor reporter) {
    return {[=](actor next) {
        self->become([=](int64_t t) {
            if (t == 0)
                self->send(reporter, done_atom::value);
            else
                self->send(next, t - 1);
        });
    }};
}

static void bench_ring(actor_system& sys, long long n) {
    const int P = 503;
    scoped_actor me{sys};
    std::vector<actor> nodes;
    for (int i = 0; i < P; ++i)
        nodes.push_back(sys.spawn(ring_node, actor_cast<actor>(me)));
    for (int i = 0; i < P; ++i)
        me->send(nodes[i], nodes[(i + 1) % P]);
    auto t0 = peer::now_ns();
    me->send(nodes[0], int64_t{n});
    me->receive([](done_atom) {});
    auto t1 = peer::now_ns();
    for (auto& a : nodes)
        me->send_exit(a, exit_reason::user_shutdown);
    peer::result("ring", IMPL, n, t1 - t0, (double)n, "passes/s", g_threads,
                 join({kv("ns_per_pass", (t1 - t0) / (double)n), kv("procs", 503LL),
                       kv("variant", "event_based")}));
}

// --- spawn -------------------------------------------------------------------
struct counter_state {
    int64_t count = 0;
    std::vector<actor> keep; // spawn_idle only: unreferenced CAF actors are destroyed
};

void spawn_child(event_based_actor* self, actor parent) {
    self->send(parent, done_atom::value); // no behavior set: the actor terminates
}

behavior spawner(stateful_actor<counter_state>* self, int64_t n, actor reporter) {
    for (int64_t i = 0; i < n; ++i)
        self->spawn(spawn_child, actor_cast<actor>(self));
    return {[=](done_atom) {
        if (++self->state.count == n) {
            self->send(reporter, done_atom::value);
            self->quit();
        }
    }};
}

static void bench_spawn(actor_system& sys, long long n) {
    scoped_actor me{sys};
    sys.spawn(spawner, int64_t{1000}, actor_cast<actor>(me)); // warm-up
    me->receive([](done_atom) {});
    auto t0 = peer::now_ns();
    sys.spawn(spawner, int64_t{n}, actor_cast<actor>(me));
    me->receive([](done_atom) {});
    auto t1 = peer::now_ns();
    peer::result("spawn", IMPL, n, t1 - t0, (double)n, "procs/s", g_threads,
                 join({kv("ns_per_spawn", (t1 - t0) / (double)n),
                       kv("variant", "event_based_spawned_by_actor")}));
}

// --- spawn_idle --------------------------------------------------------------
behavior idle_child(event_based_actor* self, actor parent) {
    self->send(parent, ready_atom::value);
    return {[=](stop_atom) { self->quit(); }};
}

behavior idle_spawner(stateful_actor<counter_state>* self, int64_t n, actor reporter) {
    self->state.keep.reserve(n);
    for (int64_t i = 0; i < n; ++i)
        self->state.keep.push_back(self->spawn(idle_child, actor_cast<actor>(self)));
    return {[=](ready_atom) {
        if (++self->state.count == n) self->send(reporter, done_atom::value);
    }};
}

static void bench_spawn_idle(actor_system& sys, long long n) {
    scoped_actor me{sys};
    long rss0 = peer::rss_kb();
    auto t0 = peer::now_ns();
    sys.spawn(idle_spawner, int64_t{n}, actor_cast<actor>(me));
    me->receive([](done_atom) {});
    auto t1 = peer::now_ns();
    long rss1 = peer::rss_kb();
    double handles = (double)n * sizeof(actor);
    double per = ((rss1 - rss0) * 1024.0 - handles) / (double)n;
    peer::result("spawn_idle", IMPL, n, t1 - t0, (double)n, "procs/s", g_threads,
                 join({kv("rss_bytes_per_proc", per), kv("variant", "event_based_waiting")}));
    std::_Exit(0); // skip shutting down N actors
}

// --- fanin -------------------------------------------------------------------
void fanin_sender(event_based_actor* self, actor dst, int64_t m) {
    for (int64_t i = 0; i < m; ++i)
        self->send(dst, i);
}

behavior fanin_receiver(stateful_actor<counter_state>* self, int64_t total, actor reporter) {
    return {[=](int64_t) {
        if (++self->state.count == total) {
            self->send(reporter, done_atom::value);
            self->quit();
        }
    }};
}

static void bench_fanin(actor_system& sys, long long k, long long m) {
    scoped_actor me{sys};
    long long total = k * m;
    auto t0 = peer::now_ns();
    auto rcv = sys.spawn(fanin_receiver, int64_t{total}, actor_cast<actor>(me));
    for (long long s = 0; s < k; ++s)
        sys.spawn(fanin_sender, rcv, int64_t{m});
    me->receive([](done_atom) {});
    auto t1 = peer::now_ns();
    peer::result("fanin", IMPL, total, t1 - t0, (double)total, "msgs/s", g_threads,
                 join({kv("senders", k), kv("per_sender", m),
                       kv("ns_per_msg", (t1 - t0) / (double)total), kv("variant", "event_based")}));
}

// --- call --------------------------------------------------------------------
behavior call_server(event_based_actor*) {
    return {[](int64_t x) { return x; }};
}

static void call_loop(event_based_actor* self, actor server, int64_t k, actor reporter) {
    self->request(server, infinite, k).then([=](int64_t r) {
        if (r != k) std::abort();
        if (k == 1)
            self->send(reporter, done_atom::value);
        else
            call_loop(self, server, k - 1, reporter);
    });
}

void call_client(event_based_actor* self, actor server, int64_t n, actor reporter) {
    call_loop(self, server, n, reporter);
}

static void bench_call(actor_system& sys, long long n) {
    scoped_actor me{sys};
    auto server = sys.spawn(call_server);
    sys.spawn(call_client, server, int64_t{1000}, actor_cast<actor>(me)); // warm-up
    me->receive([](done_atom) {});
    auto t0 = peer::now_ns();
    sys.spawn(call_client, server, int64_t{n}, actor_cast<actor>(me));
    me->receive([](done_atom) {});
    auto t1 = peer::now_ns();
    me->send_exit(server, exit_reason::user_shutdown);
    peer::result("call", IMPL, n, t1 - t0, (double)n, "calls/s", g_threads,
                 join({kv("ns_per_call", (t1 - t0) / (double)n),
                       kv("variant", "event_based_request_then")}));
}

static void bench_call_blocking(actor_system& sys, long long n) {
    scoped_actor me{sys};
    auto server = sys.spawn(call_server);
    bool ok = true;
    auto one = [&](int64_t k) {
        me->request(server, infinite, k)
            .receive([&](int64_t r) { ok &= (r == k); },
                     [&](error& e) {
                         std::fprintf(stderr, "call error: %s\n", to_string(e).c_str());
                         ok = false;
                     });
    };
    for (int64_t k = 1000; k > 0; --k)
        one(k); // warm-up
    auto t0 = peer::now_ns();
    for (int64_t k = n; k > 0; --k)
        one(k);
    auto t1 = peer::now_ns();
    me->send_exit(server, exit_reason::user_shutdown);
    if (!ok) std::exit(1);
    peer::result("call", IMPL, n, t1 - t0, (double)n, "calls/s", g_threads,
                 join({kv("ns_per_call", (t1 - t0) / (double)n),
                       kv("variant", "scoped_actor_request_receive")}));
}

// --- skynet ------------------------------------------------------------------
struct sk_state {
    int64_t sum = 0;
    int64_t count = 0;
};

static std::atomic<long long> g_sk_count{0};

behavior skynet_node(stateful_actor<sk_state>* self, actor parent, int64_t num, int64_t size,
                     int64_t div) {
    g_sk_count.fetch_add(1, std::memory_order_relaxed);
    if (size == 1) {
        self->send(parent, num);
        self->quit();
        return {};
    }
    int64_t sub = size / div;
    for (int64_t i = 0; i < div; ++i)
        self->spawn(skynet_node, actor_cast<actor>(self), num + i * sub, sub, div);
    return {[=](int64_t x) {
        self->state.sum += x;
        if (++self->state.count == div) {
            self->send(parent, self->state.sum);
            self->quit();
        }
    }};
}

static void bench_skynet(actor_system& sys, long long n) {
    scoped_actor me{sys};
    auto t0 = peer::now_ns();
    sys.spawn(skynet_node, actor_cast<actor>(me), int64_t{0}, int64_t{n}, int64_t{10});
    int64_t sum = -1;
    me->receive([&](int64_t s) { sum = s; });
    auto t1 = peer::now_ns();
    if (sum != (int64_t)n * (n - 1) / 2) {
        std::fprintf(stderr, "skynet: wrong sum\n");
        std::exit(1);
    }
    long long count = g_sk_count.load();
    peer::result("skynet", IMPL, n, t1 - t0, (double)count, "procs/s", g_threads,
                 join({kv("total_procs", count), kv("sum", (long long)sum),
                       kv("variant", "stateful_event_based")}));
}

int main(int argc, char** argv) {
    std::vector<std::string> args;
    int threads = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-t" && i + 1 < argc)
            threads = std::atoi(argv[++i]);
        else
            args.push_back(a);
    }
    if (args.size() < 2)
        peer::usage(
            "usage: peer_caf <pingpong|ring|spawn|spawn_idle|call|call_blocking|skynet> N [-t T]\n"
            "       peer_caf fanin K M | parallel_pingpong P N [-t T]\n");
    actor_system_config cfg;
    if (threads > 0) cfg.set("scheduler.max-threads", threads);
    actor_system sys{cfg};
    g_threads = (int)sys.scheduler().num_workers();
    std::string b = args[0];
    long long n = std::atoll(args[1].c_str());
    if (b == "pingpong")
        bench_pingpong(sys, n);
    else if (b == "ring")
        bench_ring(sys, n);
    else if (b == "spawn")
        bench_spawn(sys, n);
    else if (b == "spawn_idle")
        bench_spawn_idle(sys, n);
    else if (b == "fanin")
        bench_fanin(sys, n, args.size() > 2 ? std::atoll(args[2].c_str()) : 10000);
    else if (b == "call")
        bench_call(sys, n);
    else if (b == "call_blocking")
        bench_call_blocking(sys, n);
    else if (b == "skynet")
        bench_skynet(sys, n);
    else if (b == "parallel_pingpong")
        bench_parallel_pingpong(sys, n, args.size() > 2 ? std::atoll(args[2].c_str()) : 100000);
    else
        peer::usage("unknown benchmark\n");
    return 0;
}
