// A runtime as a node of a real Erlang cluster: an `erl` started by the test drives one
// direction (its -eval script prints what it saw), this test's processes the other. Each test
// has its own epmd on a free port; skipped with a warning without erl/epmd.
#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include "dist/epmd.hpp"
#include "dist_live_helpers.hpp"

#include <atomic>
#include <map>
#include <optional>
#include <string>

using namespace erl::literals;
using namespace std::chrono_literals;
using namespace dist_live;
using erl::term;

namespace {

// The kv server of examples/node_kv, in short.
struct kv_server : erl::gen_server<kv_server> {
    std::map<term, term> data;
    term handle_call(const term& req) {
        if (req.is_tagged_tuple("put"_a, 3)) {
            data[req[1]] = req[2];
            return term("ok"_a);
        }
        if (req.is_tagged_tuple("get"_a, 2)) {
            auto it = data.find(req[1]);
            if (it == data.end()) return term("not_found"_a);
            return term::tuple_from({term("ok"_a), it->second});
        }
        if (req.is_tagged_tuple("crash"_a, 1)) throw std::runtime_error("asked to crash");
        return term("bad_request"_a);
    }
    void handle_cast(const term& msg) {
        if (msg.is_tagged_tuple("put"_a, 3)) data[msg[1]] = msg[2];
    }
};

erl::runtime_options node_options(const epmd_daemon& d, std::string name,
                                  std::string cookie = "secret") {
    erl::distribution_options o;
    o.name = std::move(name);
    o.cookie = std::move(cookie);
    o.epmd_port = d.port;
    o.start_epmd = false;
    return {.schedulers = 2, .distribution = o};
}

std::string quoted(std::string_view node) {
    return fmt::format("'{}'", node);
}

} // namespace

TEST_CASE("erl pings calls casts and rpcs into an erlcpp node", "[dist][node]") {
    SKIP_WITHOUT_ERLANG();
    epmd_daemon d;
    erl::register_rpc("test"_a, "add"_a, [](const std::vector<term>& a) {
        return term(a.at(0).as_int64() + a.at(1).as_int64());
    });
    erl::register_rpc("test"_a, "fail"_a, [](const std::vector<term>&) -> term {
        throw std::runtime_error("rpc failed on purpose");
    });
    erl::runtime rt(node_options(d, "cppn1@127.0.0.1"));
    CHECK(rt.node() == "cppn1@127.0.0.1"_a);
    rt.spawn([] { erl::start<kv_server>(erl::start_options{.name = "kv"_a}); });
    auto script = fmt::format(R"(
        N = {},
        P = fun(L, V) -> io:format("~s ~p~n", [L, V]) end,
        P("ping", net_adm:ping(N)),
        P("put", gen_server:call({{kv, N}}, {{put, a, 1}})),
        P("get", gen_server:call({{kv, N}}, {{get, a}})),
        P("missing", gen_server:call({{kv, N}}, {{get, zz}})),
        gen_server:cast({{kv, N}}, {{put, b, 2}}),
        P("cast", gen_server:call({{kv, N}}, {{get, b}})),
        P("noproc", element(1, element(2, catch gen_server:call({{nobody, N}}, x, 3000)))),
        Self = self(),
        [spawn(fun() -> Self ! {{done, gen_server:call({{kv, N}}, {{put, I, I}})}} end)
         || I <- lists:seq(1, 100)],
        Oks = [receive {{done, R}} -> R after 10000 -> timeout end || _ <- lists:seq(1, 100)],
        P("hundred", lists:usort(Oks)),
        P("rpc", erpc:call(N, test, add, [2, 3])),
        P("oldrpc", rpc:call(N, test, add, [4, 5])),
        P("undef", element(2, catch erpc:call(N, nomod, nofun, []))),
        P("rpcerr", element(1, element(2, catch erpc:call(N, test, fail, [])))),
        {{kv, N}} ! {{'$gen_cast', {{put, c, 3}}}},
        P("bang", gen_server:call({{kv, N}}, {{get, c}})),
        P("crash", element(1, element(2, catch gen_server:call({{kv, N}}, {{crash}})))),
        io:format("DONE~n"),
        init:stop().
    )",
                              quoted("cppn1@127.0.0.1"));
    child erl = start_erl(d, "-name", "e1@127.0.0.1", "secret", script);
    REQUIRE(erl.wait_output("DONE", 40s));
    std::string out = erl.output();
    INFO(out);
    CHECK(out.find("ping pong") != std::string::npos);
    CHECK(out.find("put ok") != std::string::npos);
    CHECK(out.find("get {ok,1}") != std::string::npos);
    CHECK(out.find("missing not_found") != std::string::npos);
    CHECK(out.find("cast {ok,2}") != std::string::npos);
    CHECK(out.find("noproc noproc") != std::string::npos);
    CHECK(out.find("hundred [ok]") != std::string::npos);
    CHECK(out.find("rpc 5") != std::string::npos);
    CHECK(out.find("oldrpc 9") != std::string::npos);
    CHECK(out.find("{exception,undef") != std::string::npos);
    CHECK(out.find("rpcerr {exception") != std::string::npos);
    CHECK(out.find("bang {ok,3}") != std::string::npos);
    // The server crashed during the call: the caller learns its exit reason.
    CHECK(out.find("crash {exception") != std::string::npos);
}

TEST_CASE("erlcpp sends calls links and monitors into an Erlang node", "[dist][node]") {
    SKIP_WITHOUT_ERLANG();
    epmd_daemon d;
    const std::string script = R"(
        Echo = fun Loop() ->
                   receive {From, stop} -> exit(bye);
                           {From, M} -> From ! {echo, self(), M}, Loop()
                   end
               end,
        register(echo, spawn(Echo)),
        register(watcher, spawn(fun() ->
            process_flag(trap_exit, true),
            receive {watch, P} -> link(P), io:format("WATCHING~n"),
                receive {'EXIT', P, R} -> io:format("WATCHED-EXIT ~p~n", [R]) end
            end,
            timer:sleep(infinity) end)),
        io:format("ERL-READY~n"),
        timer:sleep(infinity).
    )";
    child erl = start_erl(d, "-name", "e2@127.0.0.1", "secret", script);
    REQUIRE(erl.wait_output("ERL-READY", 20s));
    const erl::atom peer("e2@127.0.0.1");
    std::vector<std::string> log;
    bool watched = false;
    erl::runtime rt(node_options(d, "cppn2@127.0.0.1"));
    rt.run([&] {
        REQUIRE(erl::connect_node(peer));
        auto ns = erl::nodes();
        CHECK(std::find(ns.begin(), ns.end(), peer) != ns.end());
        // gen_server:call to a real OTP server.
        term yes = erl::call(erl::remote_name{"net_kernel"_a, peer},
                             term::tuple_from({term("is_auth"_a), term(erl::node())}));
        log.push_back(yes.to_string());
        // A missing name: noproc at once, not after the timeout.
        auto t0 = std::chrono::steady_clock::now();
        try {
            erl::call(erl::remote_name{"nobody"_a, peer}, term("x"_a), std::chrono::seconds(4));
        } catch (const erl::call_error& e) {
            log.push_back(e.reason().to_string());
        }
        CHECK(std::chrono::steady_clock::now() - t0 < 2s);
        // {echo, Node} ! {self(), hello}
        erl::send(erl::remote_name{"echo"_a, peer},
                  term::tuple_from({term(erl::self()), term("hello"_a)}));
        term reply = erl::receive([](term t) { return t; }, erl::after(5s, [] { return term(); }));
        REQUIRE(reply.is_tagged_tuple("echo"_a, 3));
        log.push_back(reply[2].to_string());
        erl::pid echo = reply[1].as_pid();
        CHECK(echo.node() == peer);
        // A linked C++ process and a monitor see the Erlang process exit with its reason.
        erl::pid me = erl::self();
        erl::pid linked = erl::spawn([echo, me] {
            erl::process_flag(erl::trap_exit, true);
            erl::link(echo);
            erl::send(me, 1);
            erl::receive([&](const erl::exit_msg& m) {
                erl::send(me, fmt::format("exit_msg {}", m.reason));
            });
        });
        erl::receive([](int) {});
        erl::ref mon = erl::monitor(echo);
        erl::send(echo, term::tuple_from({term(erl::self()), term("stop"_a)}));
        erl::receive(erl::guard([&](const erl::down_msg& m) { return m.id == mon; },
                                [&](const erl::down_msg& m) {
                                    log.push_back(fmt::format("down {}", m.reason));
                                }),
                     erl::after(5s, [&] { log.push_back("no down"); }));
        log.push_back(erl::receive([](std::string s) { return s; },
                                   erl::after(5s, [] { return std::string("no exit_msg"); })));
        (void)linked;
        // A monitor by name of a name nobody has there: DOWN noproc.
        erl::ref m2 = erl::monitor(erl::remote_name{"echo"_a, peer});
        erl::receive(erl::guard([&](const erl::down_msg& m) { return m.id == m2; },
                                [&](const erl::down_msg& m) {
                                    log.push_back(fmt::format("name down {} {}", m.reason, m.name));
                                }),
                     erl::after(5s, [&] { log.push_back("no name down"); }));
        // A C++ process the Erlang watcher links to crashes: the exit crosses the wire.
        erl::pid victim = erl::spawn([] {
            erl::receive([](int) {});
            throw std::runtime_error("victim");
        });
        erl::send(erl::remote_name{"watcher"_a, peer},
                  term::tuple_from({term("watch"_a), term(victim)}));
        // (Waiting for the Erlang side's output blocks: off the scheduler, with erl::blocking.)
        auto wait_erl = [&erl](const char* text) {
            return erl::blocking([&erl, text] { return erl.wait_output(text, 5s); });
        };
        watched = wait_erl("WATCHING");
        erl::send(victim, 1);
        watched = watched && wait_erl("WATCHED-EXIT");
        // The Erlang node dies: a monitor by name and node monitoring see noconnection.
        erl::ref m3 = erl::monitor(erl::remote_name{"watcher"_a, peer});
        erl::monitor_node(peer, true);
        erl.kill();
        erl::receive(erl::guard([&](const erl::down_msg& m) { return m.id == m3; },
                                [&](const erl::down_msg& m) {
                                    log.push_back(fmt::format("lost {}", m.reason));
                                }),
                     erl::after(10s, [&] { log.push_back("no lost"); }));
        erl::receive(
            [&](const erl::nodedown& n) { log.push_back(fmt::format("nodedown {}", n.node)); },
            erl::after(10s, [&] { log.push_back("no nodedown"); }));
    });
    INFO(erl.output());
    CHECK(log == std::vector<std::string>{"yes", "noproc", "hello", "down bye", "exit_msg bye",
                                          "name down noproc echo", "lost noconnection",
                                          "nodedown 'e2@127.0.0.1'"});
    CHECK(watched);
}

TEST_CASE("a connection silent for net_ticktime goes down with noconnection", "[dist][node]") {
    SKIP_WITHOUT_ERLANG();
    epmd_daemon d;
    child erl = start_idle_erl(d, "e6@127.0.0.1");
    auto options = node_options(d, "cppn6@127.0.0.1");
    options.distribution->net_ticktime = std::chrono::seconds(2);
    std::string seen;
    std::string up;
    erl::runtime rt(options);
    rt.run([&] {
        erl::monitor_nodes(true);
        REQUIRE(erl::connect_node("e6@127.0.0.1"_a));
        erl::receive([&](const erl::nodeup& n) { up = n.node.str(); }, erl::after(5s));
        erl::monitor_node("e6@127.0.0.1"_a, true);
        erl::ref m = erl::monitor(erl::remote_name{"init"_a, "e6@127.0.0.1"_a});
        erl.pause(); // alive, connected, silent: only the tick timeout can tell
        auto t0 = std::chrono::steady_clock::now();
        erl::receive(erl::guard([&](const erl::down_msg& x) { return x.id == m; },
                                [&](const erl::down_msg& x) { seen = x.reason.to_string(); }),
                     erl::after(15s));
        erl::receive([&](const erl::nodedown&) { seen += " nodedown"; }, erl::after(5s));
        CHECK(std::chrono::steady_clock::now() - t0 < 10s);
        erl.resume();
    });
    CHECK(up == "e6@127.0.0.1");
    CHECK(seen == "noconnection nodedown");
}

TEST_CASE("calls to a name on another node leave no monitor behind", "[dist][node]") {
    SKIP_WITHOUT_ERLANG();
    epmd_daemon d;
    // A process that answers gen calls and says how many monitors it has.
    const std::string script = R"(
        Srv = fun Loop() ->
                  receive {'$gen_call', From, Req} -> gen:reply(From, Req);
                          {count, P} -> {monitored_by, M} = process_info(self(), monitored_by),
                                        P ! {count, length(M)}
                  end,
                  Loop()
              end,
        register(srv, spawn(Srv)),
        io:format("ERL-READY~n"),
        timer:sleep(infinity).
    )";
    child erl = start_erl(d, "-name", "e5@127.0.0.1", "secret", script);
    REQUIRE(erl.wait_output("ERL-READY", 20s));
    const erl::remote_name srv{"srv"_a, "e5@127.0.0.1"_a};
    std::int64_t sum = 0, left = -1;
    erl::runtime rt(node_options(d, "cppn6@127.0.0.1"));
    rt.run([&] {
        // Each call monitors {srv, Node} and demonitors it at the end: DEMONITOR_P must go out,
        // before the count request on the same connection.
        for (int i = 1; i <= 50; ++i)
            sum += erl::call(srv, term(i)).as_int64();
        erl::send(srv, term::tuple_from({term("count"_a), term(erl::self())}));
        left =
            erl::receive(erl::guard([](const term& t) { return t.is_tagged_tuple("count"_a, 2); },
                                    [](const term& t) { return t[1].as_int64(); }),
                         erl::after(5s, [] { return std::int64_t(-1); }));
    });
    INFO(erl.output());
    CHECK(sum == 50 * 51 / 2);
    CHECK(left == 0);
}

TEST_CASE("a wrong cookie is refused", "[dist][node]") {
    SKIP_WITHOUT_ERLANG();
    epmd_daemon d;
    child erl = start_idle_erl(d, "e3@127.0.0.1");
    bool connected = true;
    erl::runtime rt(node_options(d, "cppn3@127.0.0.1", "not-the-cookie"));
    rt.run([&] { connected = erl::connect_node("e3@127.0.0.1"_a); });
    CHECK_FALSE(connected);
}

TEST_CASE("malformed bytes from a peer close only that connection", "[dist][node]") {
    SKIP_WITHOUT_ERLANG();
    epmd_daemon d;
    erl::runtime rt(node_options(d, "cppn4@127.0.0.1"));
    // Our port, from EPMD.
    sock e = connect_to(d.port);
    REQUIRE(e.valid());
    auto req = erl::detail::dist::epmd::encode_port_please2_request("cppn4");
    e.send_all(req);
    bytes got;
    std::optional<erl::detail::dist::epmd::port2_response> r;
    for (int i = 0; i < 50 && !r; ++i) {
        bool closed = false;
        auto more = e.recv_some(100ms, closed);
        got.insert(got.end(), more.begin(), more.end());
        std::size_t used = 0;
        r = erl::detail::dist::epmd::decode_port2_response(got, used);
        if (closed) break;
    }
    REQUIRE(r);
    // A malformed handshake message, and a length that announces more than ever comes: both
    // connections are closed (the second by the setup timeout, net_setuptime).
    std::vector<sock> peers;
    for (const bytes& junk : {bytes{0, 3, 'N', 1, 2}, bytes{0xff, 0xff, 1, 2, 3, 4, 5, 6}}) {
        peers.push_back(connect_to(r->port));
        REQUIRE(peers.back().valid());
        peers.back().send_all(junk);
    }
    for (auto& s : peers) {
        bool closed = false;
        for (int i = 0; i < 240 && !closed; ++i)
            s.recv_some(50ms, closed);
        CHECK(closed);
    }
    // The node still works: Erlang can ping it.
    child erl = start_erl(d, "-name", "e4@127.0.0.1", "secret",
                          "io:format(\"~p~n\", [net_adm:ping('cppn4@127.0.0.1')]), init:stop().");
    CHECK(erl.wait_output("pong", 20s));
}

#ifdef ERLCPP_NODE_KV_PATH
TEST_CASE("two erlcpp nodes talk over the wire", "[dist][node]") {
    SKIP_WITHOUT_ERLANG();
    epmd_daemon d;
    child kv({ERLCPP_NODE_KV_PATH, "--name", "kvn@127.0.0.1", "--cookie", "secret"}, {d.env()});
    REQUIRE(kv.wait_output("ready", 20s));
    std::vector<std::string> log;
    erl::runtime rt(node_options(d, "cppn5@127.0.0.1"));
    rt.run([&] {
        erl::remote_name srv{"kv"_a, "kvn@127.0.0.1"_a};
        log.push_back(erl::call(srv, term::parse("{put, k, <<\"v\">>}")).to_string());
        log.push_back(erl::call(srv, term::parse("{get, k}")).to_string());
        erl::cast(srv, term::parse("{put, j, 7}"));
        log.push_back(erl::call(srv, term::parse("keys")).to_string());
        erl::ref m = erl::monitor(srv);
        kv.terminate();
        erl::receive(erl::guard([&](const erl::down_msg& x) { return x.id == m; },
                                [&](const erl::down_msg& x) {
                                    log.push_back(x.reason.tag() == "noconnection"_a ||
                                                          x.reason.tag() == "killed"_a
                                                      ? "down"
                                                      : x.reason.to_string());
                                }),
                     erl::after(10s, [&] { log.push_back("no down"); }));
    });
    CHECK(log == std::vector<std::string>{"ok", "{ok,<<\"v\">>}", "[j,k]", "down"});
}
#endif
