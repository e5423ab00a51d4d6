// The distribution handshake state machine, both roles against each other and against
// hand-made (and malformed) messages.
#include <catch2/catch.hpp>

#include "dist/handshake.hpp"
#include "dist/md5.hpp"

#include <random>
#include <set>

namespace dist = erl::detail::dist;
using dist::handshake;
using dist::handshake_failure;
using dist::handshake_status;
using state = dist::handshake::state;
using bytes = std::vector<std::uint8_t>;

namespace {

dist::handshake_config config(std::string node, std::uint32_t creation, std::uint32_t challenge,
                              std::string cookie = "secret") {
    dist::handshake_config c;
    c.node = std::move(node);
    c.creation = creation;
    c.cookie = std::move(cookie);
    c.challenge_source = [challenge] { return challenge; };
    return c;
}

// Hands each side's output to the other until neither has anything to say; an acceptor waiting
// for its status is answered with `status`.
void run(handshake& a, handshake& b, handshake_status status = handshake_status::ok) {
    for (int round = 0; round < 20; ++round) {
        auto to_b = a.take_output();
        if (!to_b.empty()) b.feed(to_b);
        if (b.current() == state::awaiting_status) b.answer(status);
        auto to_a = b.take_output();
        if (!to_a.empty()) a.feed(to_a);
        if (to_a.empty() && to_b.empty()) break;
    }
}

void put16(bytes& o, std::uint32_t v) {
    o.push_back(std::uint8_t(v >> 8));
    o.push_back(std::uint8_t(v));
}
// One handshake message with its u16 length.
bytes msg(const bytes& body) {
    bytes out;
    out.reserve(body.size() + 2);
    put16(out, std::uint32_t(body.size()));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}
void put32(bytes& o, std::uint32_t v) {
    put16(o, v >> 16);
    put16(o, v);
}
void put64(bytes& o, std::uint64_t v) {
    put32(o, std::uint32_t(v >> 32));
    put32(o, std::uint32_t(v));
}
void put_text(bytes& o, std::string_view s) {
    o.insert(o.end(), s.begin(), s.end());
}
bytes send_name(std::uint64_t flags, std::uint32_t creation, std::string_view name) {
    bytes m{'N'};
    put64(m, flags);
    put32(m, creation);
    put16(m, std::uint32_t(name.size()));
    put_text(m, name);
    return msg(m);
}
bytes status(std::string_view s) {
    bytes m{'s'};
    put_text(m, s);
    return msg(m);
}
bytes challenge(std::uint64_t flags, std::uint32_t ch, std::uint32_t creation,
                std::string_view name) {
    bytes m{'N'};
    put64(m, flags);
    put32(m, ch);
    put32(m, creation);
    put16(m, std::uint32_t(name.size()));
    put_text(m, name);
    return msg(m);
}
bytes reply(std::uint32_t ch, const dist::md5_digest& d) {
    bytes m{'r'};
    put32(m, ch);
    m.insert(m.end(), d.begin(), d.end());
    return msg(m);
}
bytes ack(const dist::md5_digest& d) {
    bytes m{'a'};
    m.insert(m.end(), d.begin(), d.end());
    return msg(m);
}

constexpr std::uint64_t otp25_flags = 0xd07df7fbdull; // what OTP 25.2 offers

} // namespace

TEST_CASE("initiator and acceptor complete a handshake", "[dist][handshake]") {
    auto a = handshake::initiate(config("a@127.0.0.1", 11, 0xAAAA), "b@127.0.0.1");
    auto bcfg = config("b@127.0.0.1", 22, 0xBBBB);
    bcfg.flags |= dist::dflag::published;
    auto b = handshake::accept(bcfg);
    CHECK(a.which() == handshake::role::initiator);
    CHECK(b.which() == handshake::role::acceptor);
    b.feed(a.take_output());
    REQUIRE(b.current() == state::awaiting_status);
    CHECK(b.peer().node == "a@127.0.0.1");
    CHECK(b.peer().creation == 11);
    CHECK(b.peer().flags == dist::dflag::erlcpp_default);
    run(a, b);
    REQUIRE(a.current() == state::done);
    REQUIRE(b.current() == state::done);
    CHECK(a.peer().node == "b@127.0.0.1");
    CHECK(a.peer().creation == 22);
    CHECK(a.peer().flags == (dist::dflag::erlcpp_default | dist::dflag::published));
    // A visible acceptor and a hidden initiator: the connection is hidden on both sides.
    CHECK(a.negotiated_flags() == dist::dflag::erlcpp_default);
    CHECK(b.negotiated_flags() == dist::dflag::erlcpp_default);
    CHECK(a.status_received() == handshake_status::ok);
    CHECK(a.failure() == handshake_failure::none);
}

TEST_CASE("the initiator's send_name has the version 6 layout", "[dist][handshake]") {
    auto a = handshake::initiate(config("a@127.0.0.1", 0x6b00d40b, 1), "b@127.0.0.1");
    CHECK(a.take_output() == send_name(dist::dflag::erlcpp_default, 0x6b00d40b, "a@127.0.0.1"));
    CHECK(a.take_output().empty());
}

TEST_CASE("the acceptor's messages and digests are OTP's", "[dist][handshake]") {
    auto b = handshake::accept(config("b@h.x", 7, 1234567890));
    b.feed(send_name(otp25_flags, 99, "a@h.x"));
    REQUIRE(b.current() == state::awaiting_status);
    b.answer(handshake_status::ok);
    CHECK(b.take_output() == [] {
        bytes s = status("ok");
        bytes c = challenge(dist::dflag::erlcpp_default, 1234567890, 7, "b@h.x");
        s.insert(s.end(), c.begin(), c.end());
        return s;
    }());
    // The peer proves the cookie with md5("secret" ++ "1234567890") and challenges us back.
    b.feed(reply(42, dist::handshake_digest("secret", 1234567890)));
    REQUIRE(b.current() == state::done);
    CHECK(b.take_output() == ack(dist::handshake_digest("secret", 42)));
    CHECK(b.negotiated_flags() == (dist::dflag::erlcpp_default & otp25_flags));
}

TEST_CASE("a wrong cookie fails the handshake on both sides", "[dist][handshake]") {
    SECTION("the acceptor sees the bad reply") {
        auto a = handshake::initiate(config("a@h", 1, 5, "one"), "b@h");
        auto b = handshake::accept(config("b@h", 2, 6, "two"));
        run(a, b);
        CHECK(b.current() == state::failed);
        CHECK(b.failure() == handshake_failure::bad_cookie);
        CHECK(a.current() == state::in_progress); // no ack comes: the socket will close
    }
    SECTION("the initiator sees a bad ack") {
        auto a = handshake::initiate(config("a@h", 1, 5), "b@h");
        a.take_output();
        a.feed(status("ok"));
        a.feed(challenge(otp25_flags, 9, 3, "b@h"));
        CHECK(a.take_output() == reply(5, dist::handshake_digest("secret", 9)));
        a.feed(ack(dist::handshake_digest("other", 5)));
        CHECK(a.current() == state::failed);
        CHECK(a.failure() == handshake_failure::bad_cookie);
    }
}

TEST_CASE("the initiator refuses a node that is not the one it dialled", "[dist][handshake]") {
    auto a = handshake::initiate(config("a@h", 1, 5), "b@h");
    auto b = handshake::accept(config("c@h", 2, 6));
    run(a, b);
    CHECK(a.current() == state::failed);
    CHECK(a.failure() == handshake_failure::name_mismatch);
    CHECK(a.failure_reason() == "dialled b@h but c@h answered");
}

TEST_CASE("status answers: nok not_allowed alive ok_simultaneous", "[dist][handshake]") {
    // The acceptor's answer, whether the initiator replaces an old connection (alive), and the
    // outcome: done on both sides, or the failure both sides see.
    struct row {
        handshake_status answer;
        bool replace;
        handshake_failure failure;
    };
    for (auto r : {row{handshake_status::nok, true, handshake_failure::nok},
                   row{handshake_status::not_allowed, true, handshake_failure::not_allowed},
                   row{handshake_status::ok_simultaneous, true, handshake_failure::none},
                   row{handshake_status::alive, true, handshake_failure::none},
                   row{handshake_status::alive, false, handshake_failure::alive}}) {
        INFO(dist::to_string(r.answer) << " replace " << r.replace);
        auto acfg = config("a@h", 1, 5);
        acfg.replace_alive = r.replace;
        auto a = handshake::initiate(acfg, "b@h");
        auto b = handshake::accept(config("b@h", 2, 6));
        run(a, b, r.answer);
        CHECK(a.failure() == r.failure);
        CHECK(b.failure() == r.failure);
        auto want = r.failure == handshake_failure::none ? state::done : state::failed;
        CHECK(a.current() == want);
        CHECK(b.current() == want);
        if (want == state::done) CHECK(a.status_received() == r.answer);
    }
    SECTION("named: without a NAME_ME request") {
        auto a = handshake::initiate(config("a@h", 1, 5), "b@h");
        a.feed(status(std::string_view("named:\x00\x03x@h", 11)));
        CHECK(a.failure() == handshake_failure::unsupported);
    }
    SECTION("an unknown status") {
        auto a = handshake::initiate(config("a@h", 1, 5), "b@h");
        a.feed(status("maybe"));
        CHECK(a.failure() == handshake_failure::malformed);
    }
}

TEST_CASE("simultaneous connect: the greater name keeps its attempt", "[dist][handshake]") {
    CHECK(dist::simultaneous_answer("b@h", "a@h") == handshake_status::nok);
    CHECK(dist::simultaneous_answer("a@h", "b@h") == handshake_status::ok_simultaneous);
    // Bytewise, not by locale: 'Z' (0x5a) < 'a' (0x61), and high bytes above ASCII.
    CHECK(dist::simultaneous_answer("Z@h", "a@h") == handshake_status::ok_simultaneous);
    CHECK(dist::simultaneous_answer("\xc3\xa9@h", "z@h") == handshake_status::nok);
}

TEST_CASE("peers without the mandatory flags are not allowed", "[dist][handshake]") {
    using namespace dist::dflag;
    SECTION("an initiator without V4_NC and UNLINK_ID (an OTP 25 minimal peer)") {
        auto b = handshake::accept(config("b@h", 2, 6));
        b.feed(send_name(mandatory_25, 1, "a@h"));
        CHECK(b.current() == state::failed);
        CHECK(b.failure() == handshake_failure::not_allowed);
        CHECK(b.take_output() == status("not_allowed"));
        CHECK_THAT(b.failure_reason(), Catch::Contains("V4_NC") && Catch::Contains("UNLINK_ID"));
    }
    SECTION("MANDATORY_25_DIGEST stands for the OTP 25 set") {
        auto b = handshake::accept(config("b@h", 2, 6));
        b.feed(send_name(mandatory_25_digest | v4_nc | unlink_id, 1, "a@h"));
        CHECK(b.current() == state::awaiting_status);
    }
    SECTION("OTP 25 requirements only, if so configured") {
        auto cfg = config("b@h", 2, 6);
        cfg.required = mandatory_25;
        auto b = handshake::accept(cfg);
        b.feed(send_name(mandatory_25, 1, "a@h"));
        CHECK(b.current() == state::awaiting_status);
    }
    SECTION("an acceptor lacking them, seen by the initiator") {
        auto a = handshake::initiate(config("a@h", 1, 5), "b@h");
        a.take_output();
        a.feed(status("ok"));
        a.feed(challenge(mandatory_25 & ~map_tag, 9, 3, "b@h"));
        CHECK(a.failure() == handshake_failure::not_allowed);
        CHECK(a.take_output().empty());
    }
}

TEST_CASE("an OTP 23/24 style 'n' send_name goes on with the 'c' complement", "[dist][handshake]") {
    using namespace dist::dflag;
    auto b = handshake::accept(config("b@h", 2, 6));
    bytes n{'n', 0, 5};
    put32(n, std::uint32_t(otp25_flags));
    put_text(n, "a@h");
    b.feed(msg(n));
    REQUIRE(b.current() == state::awaiting_status);
    b.answer(handshake_status::ok);
    auto out = b.take_output();
    CHECK(out.size() == status("ok").size() + challenge(0, 0, 0, "b@h").size());
    bytes c{'c'};
    put32(c, std::uint32_t(otp25_flags >> 32));
    put32(c, 77);
    b.feed(msg(c));
    b.feed(reply(3, dist::handshake_digest("secret", 6)));
    REQUIRE(b.current() == state::done);
    CHECK(b.peer().creation == 77);
    CHECK(b.peer().flags == otp25_flags);
    SECTION("without HANDSHAKE_23 it is the old protocol: refused") {
        auto old = handshake::accept(config("b@h", 2, 6));
        bytes v5{'n', 0, 5};
        put32(v5, std::uint32_t(mandatory_25 & ~handshake_23));
        put_text(v5, "a@h");
        old.feed(msg(v5));
        CHECK(old.failure() == handshake_failure::version);
    }
}

TEST_CASE("malformed handshake messages fail cleanly", "[dist][handshake]") {
    auto accept_with = [](const bytes& in) {
        auto b = handshake::accept(config("b@h", 2, 6));
        b.feed(in);
        return b;
    };
    CHECK(accept_with(msg({})).failure() == handshake_failure::malformed);
    CHECK(accept_with(msg({'x', 1, 2})).failure() == handshake_failure::malformed);
    CHECK(accept_with(msg({'N', 0, 0, 0})).failure() == handshake_failure::malformed);
    CHECK(accept_with(send_name(otp25_flags, 1, "nohost")).failure() ==
          handshake_failure::malformed);
    CHECK(accept_with(send_name(otp25_flags, 1, "a@b@c")).failure() ==
          handshake_failure::malformed);
    CHECK(accept_with(send_name(otp25_flags | dist::dflag::name_me, 0, "127.0.0.1")).failure() ==
          handshake_failure::unsupported);
    // Name length beyond the message.
    bytes m{'N'};
    put64(m, otp25_flags);
    put32(m, 1);
    put16(m, 200);
    put_text(m, "a@h");
    CHECK(accept_with(msg(m)).failure() == handshake_failure::malformed);
    // Incomplete input is just waiting, not failing.
    auto half = send_name(otp25_flags, 1, "a@h");
    half.resize(half.size() - 1);
    CHECK(accept_with(half).current() == state::in_progress);
    // A reply with a short digest.
    auto b = handshake::accept(config("b@h", 2, 6));
    b.feed(send_name(otp25_flags, 1, "a@h"));
    b.answer(handshake_status::ok);
    b.feed(msg({'r', 0, 0, 0, 1, 2, 3}));
    CHECK(b.failure() == handshake_failure::malformed);
    // A peer that floods us while we decide the status is cut off.
    auto flooded = handshake::accept(config("b@h", 2, 6));
    flooded.feed(send_name(otp25_flags, 1, "a@h"));
    REQUIRE(flooded.current() == state::awaiting_status);
    flooded.feed(bytes(70000, 0));
    flooded.feed(bytes(70000, 0));
    CHECK(flooded.failure() == handshake_failure::malformed);
    // After failing, more input changes nothing.
    b.feed(reply(1, dist::handshake_digest("secret", 6)));
    CHECK(b.current() == state::failed);
}

TEST_CASE("the handshake works fed one byte at a time and keeps what follows",
          "[dist][handshake]") {
    auto a = handshake::initiate(config("a@h", 1, 5), "b@h");
    auto b = handshake::accept(config("b@h", 2, 6));
    auto drip = [](handshake& h, const bytes& in) {
        for (auto c : in)
            h.feed(dist::bytes_view(&c, 1));
    };
    drip(b, a.take_output());
    b.answer(handshake_status::ok);
    drip(a, b.take_output());
    auto r = a.take_output();
    // The initiator's first connected-phase bytes may come in the same read as its reply.
    r.insert(r.end(), {0, 0, 0, 0, 9});
    drip(b, r);
    REQUIRE(b.current() == state::done);
    CHECK(b.take_leftover() == bytes{0, 0, 0, 0, 9});
    auto a_in = b.take_output();
    a_in.push_back(42);
    a.feed(a_in);
    REQUIRE(a.current() == state::done);
    CHECK(a.take_leftover() == bytes{42});
}

TEST_CASE("random bytes never crash the handshake", "[dist][handshake][hardening]") {
    std::mt19937 rng(12345);
    for (int i = 0; i < 2000; ++i) {
        bytes junk(rng() % 64);
        for (auto& c : junk)
            c = std::uint8_t(rng());
        if (junk.size() >= 2 && i % 2) { // well-formed lengths half of the time
            junk[0] = 0;
            junk[1] = std::uint8_t(junk.size() - 2);
            if (junk.size() > 2) junk[2] = "Nnsrac"[rng() % 6];
        }
        auto b = handshake::accept(config("b@h", 2, 6));
        b.feed(junk);
        if (b.current() == state::awaiting_status) b.answer(handshake_status::ok);
        auto a = handshake::initiate(config("a@h", 1, 5), "b@h");
        a.feed(junk);
        CHECK(a.current() != state::done);
    }
}

TEST_CASE("challenges come from the system's random source by default", "[dist][handshake]") {
    dist::handshake_config c;
    c.node = "b@h";
    c.cookie = "x";
    std::set<bytes> seen;
    for (int i = 0; i < 8; ++i) {
        auto b = handshake::accept(c);
        b.feed(send_name(otp25_flags, 1, "a@h"));
        b.answer(handshake_status::ok);
        seen.insert(b.take_output());
    }
    CHECK(seen.size() >= 7); // identical challenges would be a broken source
}
