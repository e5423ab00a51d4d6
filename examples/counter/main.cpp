// The smallest gen_server: a counter with a typed call, a cast and a deferred reply.
#include <erl/erl.hpp>
#include <erl/gen_server.hpp>

#include <fmt/format.h>

struct get {
    using reply_type = int; // call(server, get{}) returns an int
};
struct add {
    int n;
};
struct wait_until { // answered later, when the count reaches `target`
    using reply_type = int;
    int target;
};

struct counter : erl::gen_server<counter> {
    int n = 0;
    std::vector<std::pair<int, erl::from>> waiting;

    init_result init(int start) {
        n = start;
        return ok();
    }
    int handle_call(get) { return n; }
    call_result<int> handle_call(wait_until w, const erl::from& from) {
        if (n >= w.target) return reply(n);
        waiting.emplace_back(w.target, from);
        return noreply(); // erl::reply(from, ...) later
    }
    void handle_cast(add a) {
        n += a.n;
        std::erase_if(waiting, [this](auto& w) {
            if (n < w.first) return false;
            erl::reply(w.second, n); // false if that caller has given up: fine
            return true;
        });
    }
};

int main() {
    erl::runtime rt;
    rt.run([] {
        auto c = erl::start<counter>(erl::start_options{.name = erl::atom("counter")}, 0);
        erl::spawn([] {
            erl::server<counter> by_name(erl::atom("counter"));
            int v = erl::call(by_name, wait_until{3});
            fmt::print("waiter: the count reached {}\n", v);
        });
        for (int i = 0; i < 3; ++i)
            erl::cast(c, add{1});
        fmt::print("count = {}\n", erl::call(c, get{}));
        erl::sleep_for(std::chrono::milliseconds(10));
        erl::stop(c);
    });
}
