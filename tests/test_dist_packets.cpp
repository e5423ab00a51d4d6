// The connected phase: packet framing, pass-through packets, control messages both ways.
#include <catch2/catch.hpp>

#include <erl/etf.hpp>
#include <erl/term.hpp>

#include "dist/flags.hpp"
#include "dist/framing.hpp"

#include <random>

namespace dist = erl::detail::dist;
namespace ctl = erl::detail::dist::ctl;
using namespace erl::literals;
using dist::dop;
using erl::term;
using bytes = std::vector<std::uint8_t>;

namespace {

const erl::atom local_node = "cpp@127.0.0.1"_a;
const erl::atom peer_node = "a@127.0.0.1"_a;
const dist::connection_nodes nodes{local_node, peer_node};
// What the peer sees: the same connection from the other end.
const dist::connection_nodes reversed{peer_node, local_node};

const erl::pid mine(local_node, 101, 0, 7);
const erl::pid theirs(peer_node, 9, 0, 0x6b00d485);
const erl::ref my_ref(local_node, 7, {1, 2, 3});
const erl::ref their_ref(peer_node, 0x6b00d485, {4, 5, 6});

constexpr std::uint64_t full = dist::dflag::erlcpp_default;
constexpr std::uint64_t minimal =
    dist::dflag::mandatory_26 | dist::dflag::dist_monitor | dist::dflag::dist_monitor_name;

bytes unhex(std::string_view h) {
    bytes out;
    auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
        if (h[i] == ' ') {
            --i;
            continue;
        }
        out.push_back(std::uint8_t(nib(h[i]) << 4 | nib(h[i + 1])));
    }
    return out;
}

// The body of an encoded packet (without the u32 length), through a packet_reader.
bytes body_of(const bytes& packet) {
    dist::packet_reader r;
    r.feed(packet);
    auto p = r.next();
    REQUIRE(p);
    REQUIRE(r.buffered() == 0);
    return bytes(p->begin(), p->end());
}

// Encodes as the local node and decodes as the peer would (their `nodes` reversed).
dist::incoming through(const dist::control_message& m, std::uint64_t flags,
                       std::optional<term> message = std::nullopt) {
    return dist::decode_packet(body_of(dist::encode_packet(m, flags, std::move(message))),
                               reversed);
}

// A pass-through body from Erlang terms.
bytes body(const term& control, std::optional<term> payload = std::nullopt) {
    bytes out{112};
    auto c = erl::etf::encode(control);
    out.insert(out.end(), c.begin(), c.end());
    if (payload) {
        auto p = erl::etf::encode(*payload);
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

std::string parse_error(const term& control, std::optional<term> payload = std::nullopt) {
    try {
        dist::decode_packet(body(control, std::move(payload)), nodes);
    } catch (const dist::protocol_error& e) {
        return e.what();
    }
    return "accepted";
}

} // namespace

TEST_CASE("packets are split at their u32 lengths and ticks are empty", "[dist][packets]") {
    dist::packet_reader r(16);
    r.feed(bytes{0, 0, 0, 0, 0, 0, 0, 3, 'a', 'b'});
    auto t = r.next();
    REQUIRE(t);
    CHECK(t->empty()); // a tick
    CHECK_FALSE(r.next());
    r.feed(bytes{'c', 0, 0});
    auto p = r.next();
    REQUIRE(p);
    CHECK(bytes(p->begin(), p->end()) == bytes{'a', 'b', 'c'});
    CHECK_FALSE(r.next());
    CHECK(r.buffered() == 2);
    r.feed(bytes{0, 16});
    CHECK_FALSE(r.next()); // exactly the limit: allowed, waiting for the body
    r.feed(bytes(16, 'x'));
    CHECK(r.next()->size() == 16);
    r.feed(bytes{0, 0, 0, 17});
    CHECK_THROWS_AS(r.next(), dist::protocol_error);
    dist::packet_reader big;
    big.feed(bytes{0xff, 0xff, 0xff, 0xff});
    CHECK_THROWS_WITH(big.next(), Catch::Contains("exceeds the limit"));
    CHECK(dist::tick_packet() == bytes{0, 0, 0, 0});
}

TEST_CASE("many packets fed in random pieces come out whole", "[dist][packets]") {
    bytes stream;
    std::vector<bytes> want;
    for (int i = 0; i < 50; ++i) {
        bytes b(std::size_t(i * 7 % 23), std::uint8_t(i));
        want.push_back(b);
        stream.insert(stream.end(), {0, 0, 0, std::uint8_t(b.size())});
        stream.insert(stream.end(), b.begin(), b.end());
    }
    std::mt19937 rng(7);
    dist::packet_reader r;
    std::vector<bytes> got;
    for (std::size_t at = 0; at < stream.size();) {
        std::size_t n = std::min<std::size_t>(rng() % 9, stream.size() - at);
        r.feed(dist::bytes_view(stream.data() + at, n));
        at += n;
        while (auto p = r.next())
            got.emplace_back(p->begin(), p->end());
    }
    CHECK(got == want);
}

TEST_CASE("OTP's MONITOR_P packet for net_adm:ping decodes", "[dist][packets]") {
    // The packet OTP 25.2 sent (doc section 5.2), our node being cpp@127.0.0.1.
    auto b = unhex("70 8368 04 6113"
                   "58 770b 614031 32372e302e302e31 00000009 00000000 6b00d485"
                   "77 0a 6e65745f6b65726e656c"
                   "5a 0003 770b 614031 32372e302e302e31 6b00d485 000226fa e5610002 a9d774de");
    auto in = dist::decode_packet(b, nodes);
    CHECK(in.op == dop::monitor_p);
    const auto& m = std::get<ctl::monitor_p>(in.control);
    CHECK(m.from == theirs);
    CHECK(std::get<term>(m.to) == term("net_kernel"_a));
    CHECK(m.id.node() == peer_node);
    CHECK(m.id.words().size() == 3);
    CHECK(m.id.words()[0] == 0x000226fa);
    CHECK_FALSE(in.payload);
}

TEST_CASE("every control message round-trips in both wire forms", "[dist][packets]") {
    const term msg = erl::tuple("hello"_a, 42);
    const term reason = erl::tuple("shutdown"_a, "why");
    for (std::uint64_t flags : {full, minimal}) {
        INFO("flags " << dist::flags_to_string(flags));
        const bool payload_forms = flags & dist::dflag::exit_payload;
        {
            auto in = through(ctl::link{mine, theirs}, flags);
            CHECK(in.op == dop::link);
            CHECK(std::get<ctl::link>(in.control).from == mine);
            CHECK(std::get<ctl::link>(in.control).to == theirs);
        }
        {
            auto in = through(ctl::send{mine, theirs}, flags, msg);
            CHECK(in.op == (flags & dist::dflag::send_sender ? dop::send_sender : dop::send));
            CHECK(std::get<ctl::send>(in.control).to == theirs);
            CHECK(std::get<ctl::send>(in.control).from ==
                  (in.op == dop::send_sender ? mine : erl::pid()));
            CHECK(in.payload == msg);
            // Without a known sender it is always SEND.
            CHECK(through(ctl::send{erl::pid(), theirs}, flags, msg).op == dop::send);
        }
        {
            auto in = through(ctl::reg_send{mine, term("rex"_a)}, flags, msg);
            CHECK(in.op == dop::reg_send);
            CHECK(std::get<ctl::reg_send>(in.control).to_name == term("rex"_a));
            CHECK(in.payload == msg);
        }
        {
            auto in = through(ctl::alias_send{mine, their_ref}, flags, msg);
            CHECK(in.op == dop::alias_send);
            CHECK(std::get<ctl::alias_send>(in.control).alias == their_ref);
        }
        {
            auto in = through(ctl::exit{mine, theirs, reason}, flags);
            CHECK(in.op == (payload_forms ? dop::payload_exit : dop::exit));
            CHECK(std::get<ctl::exit>(in.control).reason == reason);
            CHECK_FALSE(in.payload); // the reason moved into the struct
        }
        {
            auto in = through(ctl::exit2{mine, theirs, term("kill"_a)}, flags);
            CHECK(in.op == (payload_forms ? dop::payload_exit2 : dop::exit2));
            CHECK(std::get<ctl::exit2>(in.control).reason == term("kill"_a));
        }
        {
            auto in = through(ctl::unlink_id{77, mine, theirs}, flags);
            CHECK(in.op == dop::unlink_id);
            CHECK(std::get<ctl::unlink_id>(in.control).id == 77);
            auto big = through(ctl::unlink_id{~std::uint64_t(0), mine, theirs}, flags);
            CHECK(std::get<ctl::unlink_id>(big.control).id == ~std::uint64_t(0));
            auto ack = through(ctl::unlink_id_ack{77, mine, theirs}, flags);
            CHECK(ack.op == dop::unlink_id_ack);
            CHECK(std::get<ctl::unlink_id_ack>(ack.control).from == mine);
            CHECK(through(ctl::unlink{mine, theirs}, flags).op == dop::unlink);
        }
        {
            auto in = through(ctl::monitor_p{mine, theirs, my_ref}, flags);
            CHECK(in.op == dop::monitor_p);
            CHECK(std::get<erl::pid>(std::get<ctl::monitor_p>(in.control).to) == theirs);
            CHECK(std::get<ctl::monitor_p>(in.control).id == my_ref);
            auto by_name = through(ctl::monitor_p{mine, term("net_kernel"_a), my_ref}, flags);
            CHECK(std::get<term>(std::get<ctl::monitor_p>(by_name.control).to) ==
                  term("net_kernel"_a));
            auto de = through(ctl::demonitor_p{mine, term("net_kernel"_a), my_ref}, flags);
            CHECK(de.op == dop::demonitor_p);
        }
        {
            auto in = through(
                ctl::monitor_p_exit{term("ghost"_a), theirs, their_ref, term("noproc"_a)}, flags);
            CHECK(in.op == (payload_forms ? dop::payload_monitor_p_exit : dop::monitor_p_exit));
            const auto& d = std::get<ctl::monitor_p_exit>(in.control);
            CHECK(std::get<term>(d.from) == term("ghost"_a));
            CHECK(d.reason == term("noproc"_a));
            CHECK(d.id == their_ref);
        }
        {
            term args = erl::list(1, 2);
            auto in = through(ctl::spawn_request{my_ref, mine, term(mine), term("erpc"_a),
                                                 term("execute_call"_a), 2, erl::list("monitor"_a)},
                              flags, args);
            CHECK(in.op == dop::spawn_request);
            const auto& s = std::get<ctl::spawn_request>(in.control);
            CHECK(s.arity == 2);
            CHECK(s.module == term("erpc"_a));
            CHECK(in.payload == args);
            auto rep = through(ctl::spawn_reply{their_ref, theirs, 2, term(mine)}, flags);
            CHECK(rep.op == dop::spawn_reply);
            CHECK(std::get<ctl::spawn_reply>(rep.control).flags == 2);
            auto no = through(ctl::spawn_reply{their_ref, theirs, 0, term("notsup"_a)}, flags);
            CHECK(std::get<ctl::spawn_reply>(no.control).result == term("notsup"_a));
        }
        {
            auto in = through(ctl::group_leader{term(mine), theirs}, flags);
            CHECK(in.op == dop::group_leader);
        }
    }
}

TEST_CASE("control tuples have OTP's shapes", "[dist][packets]") {
    auto reg = dist::make_control(ctl::reg_send{mine, term("net_kernel"_a)}, full, term(1));
    CHECK(reg.control == erl::tuple(6, mine, erl::atom(), "net_kernel"_a));
    auto send = dist::make_control(ctl::send{mine, theirs}, minimal, term(1));
    CHECK(send.control == erl::tuple(2, erl::atom(), theirs));
    auto exit = dist::make_control(ctl::exit{mine, theirs, term("boom"_a)}, minimal);
    CHECK(exit.control == erl::tuple(3, mine, theirs, "boom"_a));
    CHECK_FALSE(exit.payload);
    auto pexit = dist::make_control(ctl::exit{mine, theirs, term("boom"_a)}, full);
    CHECK(pexit.control == erl::tuple(24, mine, theirs));
    CHECK(pexit.payload == term("boom"_a));
    auto ack = dist::make_control(ctl::unlink_id_ack{4, mine, theirs}, full);
    CHECK(ack.control == erl::tuple(36, 4, mine, theirs));
    // The packet: length, 'p', 131 control, 131 payload.
    auto packet = dist::encode_packet(reg);
    auto c = erl::etf::encode(reg.control), p = erl::etf::encode(term(1));
    bytes want{0, 0, 0, std::uint8_t(1 + c.size() + p.size()), 112};
    want.insert(want.end(), c.begin(), c.end());
    want.insert(want.end(), p.begin(), p.end());
    CHECK(packet == want);
    // Payloads where they belong only.
    CHECK_THROWS_AS(dist::make_control(ctl::send{mine, theirs}, full), std::invalid_argument);
    CHECK_THROWS_AS(dist::make_control(ctl::link{mine, theirs}, full, term(1)),
                    std::invalid_argument);
}

TEST_CASE("trace-token variants parse into the plain messages", "[dist][packets]") {
    term token = erl::tuple(0, "label"_a, 0, theirs, 0);
    auto in = dist::decode_packet(body(erl::tuple(12, erl::atom(), mine, token), term(5)), nodes);
    CHECK(in.op == dop::send_tt);
    CHECK(in.trace_token == token);
    CHECK(std::get<ctl::send>(in.control).to == mine);
    auto ex = dist::decode_packet(body(erl::tuple(13, theirs, mine, token, "why"_a)), nodes);
    CHECK(std::get<ctl::exit>(ex.control).reason == term("why"_a));
    CHECK(ex.trace_token == token);
    auto ex2 = dist::decode_packet(body(erl::tuple(18, theirs, mine, token, "why"_a)), nodes);
    CHECK(std::get<ctl::exit2>(ex2.control).reason == term("why"_a));
    auto pe = dist::decode_packet(body(erl::tuple(25, theirs, mine, token), term("r"_a)), nodes);
    CHECK(std::get<ctl::exit>(pe.control).reason == term("r"_a));
    auto rs = dist::decode_packet(body(erl::tuple(16, theirs, erl::atom(), "x"_a, token), term(1)),
                                  nodes);
    CHECK(std::get<ctl::reg_send>(rs.control).to_name == term("x"_a));
    auto as = dist::decode_packet(body(erl::tuple(34, theirs, my_ref, token), term(1)), nodes);
    CHECK(std::get<ctl::alias_send>(as.control).alias == my_ref);
}

TEST_CASE("malformed control messages are errors not crashes", "[dist][packets]") {
    using Catch::Contains;
    CHECK_THAT(parse_error(term(1)), Contains("not a tuple"));
    CHECK_THAT(parse_error(erl::tuple()), Contains("not a tuple"));
    CHECK_THAT(parse_error(erl::tuple("link"_a, theirs, mine)), Contains("not a tuple"));
    for (int op : {0, 5, 9, 10, 11, 14, 15, 17, 37, 200, -1})
        CHECK_THAT(parse_error(erl::tuple(op, theirs, mine)), Contains("unknown"));
    CHECK_THAT(parse_error(erl::tuple(1, theirs)), Contains("arity"));
    CHECK_THAT(parse_error(erl::tuple(1, theirs, mine, mine)), Contains("arity"));
    CHECK_THAT(parse_error(erl::tuple(1, "x"_a, mine)), Contains("not a pid"));
    // Senders are the peer's processes, addressees ours.
    CHECK_THAT(parse_error(erl::tuple(1, mine, mine)), Contains("not a pid of a@127.0.0.1"));
    CHECK_THAT(parse_error(erl::tuple(1, theirs, theirs)), Contains("not a pid of cpp@127.0.0.1"));
    erl::pid stranger("z@elsewhere"_a, 1, 0, 1);
    CHECK_THAT(parse_error(erl::tuple(22, stranger, mine), term(1)), Contains("not a pid of"));
    CHECK_THAT(parse_error(erl::tuple(19, theirs, mine, erl::ref("z@e"_a, 1, {1, 2, 3}))),
               Contains("third node"));
    CHECK_THAT(parse_error(erl::tuple(19, theirs, 42, their_ref)), Contains("not a pid"));
    // Payloads exactly where the operation has one.
    CHECK_THAT(parse_error(erl::tuple(22, theirs, mine)), Contains("without a payload"));
    CHECK_THAT(parse_error(erl::tuple(1, theirs, mine), term(1)), Contains("with a payload"));
    CHECK_THAT(parse_error(erl::tuple(2, 5, mine), term(1)), Contains("not an atom"));
    CHECK_THAT(parse_error(erl::tuple(6, theirs, erl::atom(), "x"), term(1)),
               Contains("not an atom"));
    CHECK_THAT(parse_error(erl::tuple(35, 0, theirs, mine)), Contains("is 0"));
    CHECK_THAT(parse_error(erl::tuple(35, -3, theirs, mine)), Contains("negative"));
    CHECK_THAT(parse_error(erl::tuple(35, erl::bigint::from_uint64(1), theirs, mine)),
               Contains("accepted"));
    CHECK_THAT(parse_error(erl::tuple(35, 1.5, theirs, mine)), Contains("not an integer"));
    CHECK_THAT(parse_error(erl::tuple(31, my_ref, mine, 4, "ok"_a)), Contains("out of range"));
    CHECK_THAT(parse_error(erl::tuple(31, my_ref, mine, 2, "bad")), Contains("not a pid"));
    term mfa = erl::tuple("m"_a, "f"_a, 1);
    CHECK_THAT(
        parse_error(erl::tuple(29, their_ref, theirs, theirs, mfa, erl::list()), erl::list(1, 2)),
        Contains("arity and arguments differ"));
    CHECK_THAT(parse_error(
                   erl::tuple(29, their_ref, theirs, theirs, erl::tuple("m"_a, "f"_a), erl::list()),
                   erl::list(1)),
               Contains("Module, Function, Arity"));
    CHECK_THAT(parse_error(erl::tuple(29, their_ref, theirs, theirs, mfa, 3), erl::list(1)),
               Contains("options"));
    CHECK_THAT(parse_error(erl::tuple(29, their_ref, theirs, theirs, mfa, erl::list()), term(1)),
               Contains("not a list"));
    CHECK_THAT(
        parse_error(erl::tuple(29, their_ref, theirs, theirs, mfa, erl::list()), erl::list(1)),
        Contains("accepted"));
}

TEST_CASE("malformed packets are errors not crashes", "[dist][packets]") {
    auto err = [](const bytes& b) {
        try {
            dist::decode_packet(b, nodes);
        } catch (const dist::protocol_error& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    using Catch::Contains;
    auto good = body(erl::tuple(22, theirs, mine), term(1));
    CHECK(err(good) == "accepted");
    CHECK_THAT(err({}), Contains("empty"));
    CHECK_THAT(err({131, 68, 0}), Contains("neither DIST_HDR_ATOM_CACHE nor FRAGMENTS"));
    CHECK_THAT(err({131, 69, 0}), Contains("neither DIST_HDR_ATOM_CACHE nor FRAGMENTS"));
    CHECK_THAT(err({7, 131, 106}), Contains("packet type 7"));
    CHECK_THAT(err({112}), Contains("does not start with 131"));
    CHECK_THAT(err({112, 106}), Contains("does not start with 131"));
    CHECK_THAT(err({112, 131, 104, 3, 97}), Contains("control message"));
    auto trailing = good;
    trailing.push_back(0);
    CHECK_THAT(err(trailing), Contains("payload"));
    auto three = good;
    auto extra = erl::etf::encode(term(2));
    three.insert(three.end(), extra.begin(), extra.end());
    CHECK_THAT(err(three), Contains("bytes after the payload"));
    auto truncated = good;
    truncated.pop_back();
    CHECK_THAT(err(truncated), Contains("payload"));
    // Compressed terms and atom cache references are not dist traffic here.
    CHECK_THAT(err({112, 131, 80, 0, 0, 0, 1, 0}), Contains("control message"));
    CHECK_THAT(err({112, 131, 82, 0}), Contains("control message"));
}

TEST_CASE("network atoms stay out of the atom table when so configured", "[dist][packets]") {
    erl::etf::decode_options opts;
    opts.atom_table_limit = 0;
    std::string fresh = "dist_test_never_seen_name_4711";
    auto before = erl::atom::table_size();
    // Build the packet by hand so the name is not interned by the test itself.
    auto c = erl::etf::encode(erl::tuple(6, theirs, erl::atom(), "x"_a));
    auto pos = std::size_t(c.size() - 2); // the SMALL_ATOM_UTF8 'x' at the end: 119 1 'x'
    REQUIRE(c[pos - 1] == 119);
    c.resize(pos);
    c.push_back(std::uint8_t(fresh.size()));
    c.insert(c.end(), fresh.begin(), fresh.end());
    bytes b{112};
    b.insert(b.end(), c.begin(), c.end());
    auto p = erl::etf::encode(term(1));
    b.insert(b.end(), p.begin(), p.end());
    before = erl::atom::table_size();
    auto in = dist::decode_packet(b, nodes, opts);
    const auto& rs = std::get<ctl::reg_send>(in.control);
    CHECK(rs.to_name.atom_name() == fresh);
    CHECK(rs.from == theirs);
    CHECK_FALSE(dist::existing_atom(rs.to_name).has_value());
    CHECK(erl::atom::table_size() == before);
    CHECK(dist::existing_atom(term("ok"_a)) == erl::atoms::ok);
}

TEST_CASE("random bytes never crash the packet decoder", "[dist][packets][hardening]") {
    std::mt19937 rng(99);
    auto seed = body(erl::tuple(19, theirs, "net_kernel"_a, their_ref));
    erl::etf::decode_options opts;
    opts.atom_table_limit = 0;
    int accepted = 0;
    for (int i = 0; i < 5000; ++i) {
        bytes b = seed;
        for (int k = 0, n = 1 + int(rng() % 4); k < n; ++k)
            b[rng() % b.size()] = std::uint8_t(rng());
        if (rng() % 4 == 0) b.resize(rng() % b.size());
        try {
            dist::decode_packet(b, nodes, opts);
            ++accepted;
        } catch (const dist::protocol_error&) {
        }
    }
    CHECK(accepted < 5000);
}
