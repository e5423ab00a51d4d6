// The protocol layer against a real EPMD and real Erlang nodes, over small blocking test-only
// socket helpers (the library itself does no I/O here). Each test starts its own epmd on a free
// port (ERL_EPMD_PORT for the Erlang nodes), every wait has a deadline, and every OS process
// started is killed by its id at the end. Skipped with a warning without erl/epmd.
#include <catch2/catch.hpp>

#include <erl/etf.hpp>
#include <erl/term.hpp>

#include <fmt/ranges.h>

#include "dist/epmd.hpp"
#include "dist/framing.hpp"
#include "dist/handshake.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace dist = erl::detail::dist;
namespace epmd = erl::detail::dist::epmd;
namespace ctl = erl::detail::dist::ctl;
using namespace erl::literals;
using namespace std::chrono_literals;
using erl::term;
using bytes = std::vector<std::uint8_t>;
using clock_type = std::chrono::steady_clock;

#include "dist_live_helpers.hpp"

using namespace dist_live;

namespace {

// ---- protocol drivers ----

// EPMD: one request, the whole reply (EPMD closes after answering).
bytes epmd_ask(std::uint16_t port, const bytes& request) {
    sock s = connect_to(port);
    REQUIRE(s.valid());
    s.send_all(request);
    bytes all;
    bool closed = false;
    for (auto end = clock_type::now() + 5s; !closed && clock_type::now() < end;) {
        auto b = s.recv_some(200ms, closed);
        all.insert(all.end(), b.begin(), b.end());
    }
    return all;
}

std::optional<epmd::port2_response> port_please(std::uint16_t epmd_port, std::string_view name) {
    auto reply = epmd_ask(epmd_port, epmd::encode_port_please2_request(name));
    std::size_t used = 0;
    return epmd::decode_port2_response(reply, used);
}

// Waits until EPMD knows `name` (an Erlang node registers early in its boot).
std::uint16_t wait_registered(std::uint16_t epmd_port, std::string_view name) {
    for (auto end = clock_type::now() + 20s; clock_type::now() < end;
         std::this_thread::sleep_for(100ms)) {
        auto r = port_please(epmd_port, name);
        if (r && r->result == 0) return r->port;
    }
    FAIL("node " << name << " never registered with epmd");
    return 0;
}

// Registers `name` on `port`; the returned socket keeps the registration alive.
std::pair<sock, epmd::alive2_response> register_node(std::uint16_t epmd_port,
                                                     const std::string& name, std::uint16_t port) {
    sock s = connect_to(epmd_port);
    REQUIRE(s.valid());
    epmd::alive2_request r;
    r.name = name;
    r.port = port;
    s.send_all(epmd::encode_alive2_request(r));
    bytes got;
    bool closed = false;
    for (auto end = clock_type::now() + 5s; clock_type::now() < end && !closed;) {
        auto b = s.recv_some(200ms, closed);
        got.insert(got.end(), b.begin(), b.end());
        std::size_t used = 0;
        if (auto resp = epmd::decode_alive2_response(got, used)) return {std::move(s), *resp};
    }
    FAIL("no ALIVE2 reply from epmd");
    return {};
}

// Runs a handshake over `s` until done or failed; an acceptor's status question is answered
// with ok. Returns the final state (in_progress if the peer closed or went silent).
dist::handshake::state drive(const sock& s, dist::handshake& h, bool& peer_closed) {
    peer_closed = false;
    for (auto end = clock_type::now() + 15s; clock_type::now() < end;) {
        if (h.current() == dist::handshake::state::awaiting_status)
            h.answer(dist::handshake_status::ok);
        auto out = h.take_output();
        if (!out.empty()) s.send_all(out);
        if (h.current() == dist::handshake::state::done ||
            h.current() == dist::handshake::state::failed)
            return h.current();
        auto in = s.recv_some(200ms, peer_closed);
        if (peer_closed) return h.current();
        if (!in.empty()) h.feed(in);
    }
    return h.current();
}

// Reads packets until `want` says yes to one (ticks are answered); nullopt on timeout or close.
template <typename Pred>
std::optional<dist::incoming>
read_until(const sock& s, dist::packet_reader& r, const dist::connection_nodes& nodes, Pred want,
           std::vector<std::string>* seen = nullptr, std::chrono::milliseconds timeout = 15s) {
    for (auto end = clock_type::now() + timeout; clock_type::now() < end;) {
        while (auto p = r.next()) {
            if (p->empty()) {
                s.send_all(dist::tick_packet());
                continue;
            }
            auto in = dist::decode_packet(*p, nodes);
            if (seen)
                seen->push_back(fmt::format("{}{}", dist::to_string(in.op),
                                            in.payload ? " + " + in.payload->to_string() : ""));
            if (want(in)) return in;
        }
        bool closed = false;
        auto b = s.recv_some(200ms, closed);
        if (closed) return std::nullopt;
        r.feed(b);
    }
    return std::nullopt;
}

// Our side of a test: an epmd of its own, a listening socket, and our name registered there
// (`reg` keeps the registration).
struct our_node {
    epmd_daemon d;
    listener l;
    sock reg;
    epmd::alive2_response resp;
    explicit our_node(const std::string& alive) {
        std::tie(reg, resp) = register_node(d.port, alive, l.port);
    }
};

dist::handshake_config our_config(const std::string& node, std::uint32_t creation,
                                  const std::string& cookie, bool visible = false) {
    dist::handshake_config c;
    c.node = node;
    c.creation = creation;
    c.cookie = cookie;
    if (visible) c.flags |= dist::dflag::published;
    return c;
}

// An Erlang node with a registered `echo` process that answers {From, Msg} with
// From ! {echo_reply, Msg}; prints READY once it is there.
const std::string echo_node_expr =
    "register(echo, spawn(fun Loop() -> receive {From, Msg} -> From ! {echo_reply, Msg}, "
    "Loop() end end)), io:format(\"READY~n\"), timer:sleep(30000), init:stop().";

} // namespace

TEST_CASE("live: register with a real epmd and look nodes up", "[dist][live]") {
    SKIP_WITHOUT_ERLANG();
    our_node us("cpplive");
    auto& [d, l, reg, resp] = us;
    CHECK(resp.result == 0);
    CHECK(resp.extended);
    CHECK(resp.creation != 0);
    // The name is taken while the first registration lives.
    auto [reg2, resp2] = register_node(d.port, "cpplive", l.port);
    CHECK(resp2.result != 0);
    auto found = port_please(d.port, "cpplive");
    REQUIRE(found);
    CHECK(found->result == 0);
    CHECK(found->port == l.port);
    CHECK(found->name == "cpplive");
    CHECK(found->speaks_version_6());
    CHECK(found->node_type == epmd::node_type_normal);
    std::size_t used = 0;
    auto none = epmd::decode_port2_response(
        epmd_ask(d.port, epmd::encode_port_please2_request("nosuchnode")), used);
    REQUIRE(none);
    CHECK(none->result != 0);
    auto names = epmd::decode_names_response(epmd_ask(d.port, epmd::encode_names_request()));
    CHECK(names.epmd_port == d.port);
    CHECK(std::find(names.nodes.begin(), names.nodes.end(),
                    epmd::names_response::entry{"cpplive", l.port}) != names.nodes.end());
    // Closing the ALIVE2 connection unregisters the name.
    reg = sock();
    bool gone = false;
    for (auto end = clock_type::now() + 5s; !gone && clock_type::now() < end;
         std::this_thread::sleep_for(50ms)) {
        auto r = port_please(d.port, "cpplive");
        gone = r && r->result != 0;
    }
    CHECK(gone);
}

TEST_CASE("live: handshake as initiator with erl -name then REG_SEND and replies", "[dist][live]") {
    SKIP_WITHOUT_ERLANG();
    our_node us("cpp");
    auto& [d, l, reg, resp] = us;
    REQUIRE(resp.result == 0);
    child erl = start_erl(d, "-name", "e1@127.0.0.1", "secret", echo_node_expr);
    REQUIRE(erl.wait_output("READY", 30s));
    std::uint16_t port = wait_registered(d.port, "e1");
    const std::string me = "cpp@127.0.0.1";

    SECTION("the right cookie: connected, messages both ways") {
        sock s = connect_to(port);
        REQUIRE(s.valid());
        auto h = dist::handshake::initiate(our_config(me, resp.creation, "secret", true),
                                           "e1@127.0.0.1");
        bool closed = false;
        REQUIRE(drive(s, h, closed) == dist::handshake::state::done);
        CHECK(h.peer().node == "e1@127.0.0.1");
        CHECK(h.peer().creation != 0);
        CHECK((h.peer().flags & dist::dflag::mandatory_26) == dist::dflag::mandatory_26);
        CHECK_FALSE(dist::dflag::uses_dist_header(h.negotiated_flags()));
        INFO("OTP offered " << dist::flags_to_string(h.peer().flags));

        const dist::connection_nodes nodes{erl::atom(me), "e1@127.0.0.1"_a};
        const std::uint64_t flags = h.negotiated_flags();
        erl::pid self(nodes.local, 1, 0, resp.creation);
        dist::packet_reader r;
        r.feed(h.take_leftover());
        std::vector<std::string> seen;
        // REG_SEND to the registered echo process: it answers our pid (SEND_SENDER).
        s.send_all(dist::encode_packet(ctl::reg_send{self, term("echo"_a)}, flags,
                                       erl::tuple(self, "hello"_a)));
        auto reply = read_until(
            s, r, nodes,
            [&](const dist::incoming& in) {
                return std::holds_alternative<ctl::send>(in.control) &&
                       std::get<ctl::send>(in.control).to == self;
            },
            &seen);
        INFO("received: " << fmt::format("{}", fmt::join(seen, "; ")));
        REQUIRE(reply);
        CHECK(reply->op == dist::dop::send_sender);
        CHECK(*reply->payload == erl::tuple("echo_reply"_a, "hello"_a));
        erl::pid echo = std::get<ctl::send>(reply->control).from;
        CHECK(echo.node() == nodes.peer);

        // A gen_server call to net_kernel ({is_auth, Node} -> yes), as net_adm:ping does.
        erl::ref tag(nodes.local, resp.creation, {1, 2, 3});
        s.send_all(dist::encode_packet(
            ctl::reg_send{self, term("net_kernel"_a)}, flags,
            erl::tuple("$gen_call"_a, erl::tuple(self, tag), erl::tuple("is_auth"_a, me))));
        auto yes = read_until(s, r, nodes, [&](const dist::incoming& in) {
            return in.payload && in.payload->is_tuple(2) && (*in.payload)[0] == term(tag);
        });
        REQUIRE(yes);
        CHECK((*yes->payload)[1] == term("yes"_a));

        // rex, the old C-node rpc: we are visible, so the node lists us in nodes().
        s.send_all(dist::encode_packet(
            ctl::reg_send{self, term("rex"_a)}, flags,
            erl::tuple(self, erl::tuple("call"_a, "erlang"_a, "nodes"_a, erl::list(), "user"_a))));
        auto rex = read_until(s, r, nodes, [&](const dist::incoming& in) {
            return in.payload && in.payload->is_tagged_tuple("rex"_a, 2);
        });
        REQUIRE(rex);
        CHECK((*rex->payload)[1] == erl::list(erl::atom(me)));

        // Links and exits: link to the echo process and kill it with exit/2; the link brings
        // its death back to us (EXIT with our link).
        s.send_all(dist::encode_packet(ctl::link{self, echo}, flags));
        s.send_all(dist::encode_packet(ctl::exit2{self, echo, term("kill"_a)}, flags));
        auto down = read_until(s, r, nodes, [&](const dist::incoming& in) {
            return std::holds_alternative<ctl::exit>(in.control);
        });
        REQUIRE(down);
        CHECK(std::get<ctl::exit>(down->control).from == echo);
        CHECK(std::get<ctl::exit>(down->control).reason == term("killed"_a));
        CHECK(down->op == dist::dop::payload_exit);

        // A monitor by name of something that is not there: noproc at once.
        erl::ref mref(nodes.local, resp.creation, {4, 5, 6});
        s.send_all(dist::encode_packet(ctl::monitor_p{self, term("ghost"_a), mref}, flags));
        auto ghost = read_until(s, r, nodes, [&](const dist::incoming& in) {
            return std::holds_alternative<ctl::monitor_p_exit>(in.control);
        });
        REQUIRE(ghost);
        const auto& g = std::get<ctl::monitor_p_exit>(ghost->control);
        CHECK(g.id == mref);
        CHECK(std::get<term>(g.from) == term("ghost"_a));
        CHECK(g.reason == term("noproc"_a));
    }
    SECTION("a wrong cookie is refused") {
        sock s = connect_to(port);
        REQUIRE(s.valid());
        auto h = dist::handshake::initiate(our_config(me, resp.creation, "wrong"), "e1@127.0.0.1");
        bool closed = false;
        auto st = drive(s, h, closed);
        CHECK(st != dist::handshake::state::done);
        CHECK(closed); // OTP closes the socket instead of acknowledging
        CHECK(erl.wait_output("nvalid challenge reply", 10s));
    }
    SECTION("a node name that is not the one dialled is refused") {
        sock s = connect_to(port);
        auto h =
            dist::handshake::initiate(our_config(me, resp.creation, "secret"), "other@127.0.0.1");
        bool closed = false;
        CHECK(drive(s, h, closed) == dist::handshake::state::failed);
        CHECK(h.failure() == dist::handshake_failure::name_mismatch);
    }
}

TEST_CASE("live: short names: handshake with erl -sname", "[dist][live]") {
    SKIP_WITHOUT_ERLANG();
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::string shorthost(host);
    shorthost = shorthost.substr(0, shorthost.find('.'));
    epmd_daemon d;
    child erl = start_erl(d, "-sname", "e3", "secret", echo_node_expr);
    REQUIRE(erl.wait_output("READY", 30s));
    std::uint16_t port = wait_registered(d.port, "e3");
    sock s = connect_to(port);
    REQUIRE(s.valid());
    auto h = dist::handshake::initiate(our_config("cpp@" + shorthost, 1234, "secret"),
                                       "e3@" + shorthost);
    bool closed = false;
    REQUIRE(drive(s, h, closed) == dist::handshake::state::done);
    CHECK(h.peer().node == "e3@" + shorthost);
}

TEST_CASE("live: handshake as acceptor: net_adm:ping from erl answers pong", "[dist][live]") {
    SKIP_WITHOUT_ERLANG();
    our_node us("cpptest");
    // Plain references: clang 14 cannot capture structured bindings in lambdas.
    const auto& d = us.d;
    const auto& l = us.l;
    const auto& resp = us.resp;
    REQUIRE(resp.result == 0);
    const std::string me = "cpptest@127.0.0.1";

    // An Erlang node pings us; we accept its connection and run the handshake.
    struct inbound {
        child erl;
        sock s;
        dist::handshake h;
        dist::handshake::state outcome;
    };
    auto pinged_by = [&](const std::string& node, const std::string& cookie) {
        inbound in{start_erl(d, "-name", node, cookie,
                             "R = net_adm:ping('cpptest@127.0.0.1'), "
                             "io:format(\"PING ~p ~p~n\", [R, nodes(hidden)]), init:stop()."),
                   sock(), dist::handshake::accept(our_config(me, resp.creation, "secret")),
                   dist::handshake::state::in_progress};
        in.s = l.accept(30s);
        REQUIRE(in.s.valid());
        bool closed = false;
        in.outcome = drive(in.s, in.h, closed);
        return in;
    };

    SECTION("the right cookie: pong") {
        auto [erl, s, h, outcome] = pinged_by("e2@127.0.0.1", "secret");
        REQUIRE(outcome == dist::handshake::state::done);
        CHECK(h.peer().node == "e2@127.0.0.1");
        const dist::connection_nodes nodes{erl::atom(me), "e2@127.0.0.1"_a};
        const std::uint64_t flags = h.negotiated_flags();
        dist::packet_reader r;
        r.feed(h.take_leftover());
        std::vector<std::string> seen;
        // ping is gen:call({net_kernel, Node}, {is_auth, node()}): MONITOR_P, then REG_SEND.
        auto call = read_until(
            s, r, nodes,
            [](const dist::incoming& in) {
                return std::holds_alternative<ctl::reg_send>(in.control) &&
                       std::get<ctl::reg_send>(in.control).to_name == term("net_kernel"_a);
            },
            &seen);
        INFO("received: " << fmt::format("{}", fmt::join(seen, "; ")));
        REQUIRE(call);
        REQUIRE(seen.size() >= 2);
        CHECK(seen[0] == "MONITOR_P");
        const term& msg = *call->payload;
        REQUIRE(msg.is_tagged_tuple("$gen_call"_a, 3));
        CHECK(msg[2] == erl::tuple("is_auth"_a, "e2@127.0.0.1"_a));
        const term& from = msg[1]; // {Pid, Tag}, Tag = [alias|Ref] from OTP 24 on
        REQUIRE(from.is_tuple(2));
        const term& tag = from[1];
        erl::pid net_kernel(nodes.local, 2, 0, resp.creation);
        if (tag.is_cons() && tag[0] == term("alias"_a) && (flags & dist::dflag::alias)) {
            s.send_all(dist::encode_packet(ctl::alias_send{net_kernel, tag.tail().as_ref()}, flags,
                                           erl::tuple(tag, "yes"_a)));
        } else {
            s.send_all(dist::encode_packet(ctl::send{net_kernel, from[0].as_pid()}, flags,
                                           erl::tuple(tag, "yes"_a)));
        }
        // The call ends with a DEMONITOR_P; then the node stops and closes the connection.
        auto demon = read_until(
            s, r, nodes,
            [](const dist::incoming& in) {
                return std::holds_alternative<ctl::demonitor_p>(in.control);
            },
            &seen);
        CHECK(demon);
        REQUIRE(erl.wait_exit(30s));
        CHECK_THAT(erl.output(), Catch::Contains("PING pong ['cpptest@127.0.0.1']"));
    }
    SECTION("a wrong cookie: we refuse, ping says pang") {
        auto [erl, s, h, outcome] = pinged_by("e4@127.0.0.1", "other");
        CHECK(outcome == dist::handshake::state::failed);
        CHECK(h.failure() == dist::handshake_failure::bad_cookie);
        s = sock();
        REQUIRE(erl.wait_exit(30s));
        CHECK_THAT(erl.output(), Catch::Contains("PING pang"));
    }
}
