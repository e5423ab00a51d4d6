// kv_store: a key-value gen_server with concurrent clients and one deferred reply.
//   kv_store [CLIENTS=8] [OPS=10000]
// Each client writes and reads its own keys; one extra client asks to be told when the key
// "done" is written (handle_call keeps the `from` and answers later), which the last client to
// finish does.
#include <erl/erl.hpp>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <vector>

struct put {
    std::string key;
    std::string value;
};
struct get {
    using reply_type = std::optional<std::string>;
    std::string key;
};
struct size {
    using reply_type = std::size_t;
};
struct await_key { // answered when `key` is written
    using reply_type = std::string;
    std::string key;
};

struct kv_store : erl::gen_server<kv_store> {
    std::map<std::string, std::string> data;
    std::multimap<std::string, erl::from> waiting;

    init_result init() { return ok(); }

    std::optional<std::string> handle_call(get g) {
        auto it = data.find(g.key);
        if (it == data.end()) return std::nullopt;
        return it->second;
    }
    std::size_t handle_call(size) { return data.size(); }
    call_result<std::string> handle_call(await_key a, const erl::from& from) {
        if (auto it = data.find(a.key); it != data.end()) return reply(it->second);
        waiting.emplace(a.key, from);
        return noreply();
    }
    void handle_cast(put p) {
        auto [first, last] = waiting.equal_range(p.key);
        for (auto it = first; it != last; ++it)
            erl::reply(it->second, p.value);
        waiting.erase(first, last);
        data[std::move(p.key)] = std::move(p.value);
    }
};

int main(int argc, char** argv) {
    int clients = argc > 1 ? std::atoi(argv[1]) : 8;
    int ops = argc > 2 ? std::atoi(argv[2]) : 10000;
    erl::runtime rt;
    rt.run([clients, ops] {
        auto store = erl::start<kv_store>(erl::start_options{.name = erl::atom("kv")});
        erl::pid me = erl::self();
        erl::spawn([me] {
            erl::server<kv_store> kv(erl::atom("kv"));
            std::string who = erl::call(kv, await_key{"done"}, erl::infinity);
            fmt::print("watcher: \"done\" was written by {}\n", who);
            erl::send(me, 0);
        });
        auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < clients; ++c)
            erl::spawn([c, ops, me] {
                erl::server<kv_store> kv(erl::atom("kv"));
                int hits = 0;
                for (int i = 0; i < ops; ++i) {
                    std::string key = fmt::format("client{}:{}", c, i % 100);
                    erl::cast(kv, put{key, std::to_string(i)});
                    if (erl::call(kv, get{key}) == std::to_string(i)) ++hits;
                }
                erl::send(me, hits);
            });
        long hits = 0;
        for (int c = 0; c < clients; ++c)
            hits += erl::receive([](int h) { return h; });
        std::chrono::duration<double> s = std::chrono::steady_clock::now() - t0;
        erl::cast(store, put{"done", fmt::format("{}", erl::self())});
        erl::receive([](int) {});
        fmt::print("{} clients x {} put+get: {} reads saw their own write, {} keys, {:.3f} s "
                   "({:.0f} ns per call)\n",
                   clients, ops, hits, erl::call(store, size{}), s.count(),
                   s.count() * 1e9 / (double(clients) * ops));
        erl::stop(store);
    });
}
