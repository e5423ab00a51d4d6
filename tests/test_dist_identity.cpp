// Remote identities: pids, references and ports of other nodes as the distribution layer will
// decode them, compared, hashed and printed as OTP does (orders checked against OTP 25).
#include <catch2/catch.hpp>

#include <erl/etf.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>
#include <erl/term.hpp>
#include <erl/term_convert.hpp>

#include <algorithm>
#include <array>
#include <unordered_set>
#include <vector>

using namespace erl::literals;
using erl::term;

namespace {

std::vector<std::uint8_t> with_node(std::vector<std::uint8_t> head, std::string_view node,
                                    std::vector<std::uint8_t> tail) {
    head.push_back(119); // SMALL_ATOM_UTF8_EXT
    head.push_back(std::uint8_t(node.size()));
    head.insert(head.end(), node.begin(), node.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
}

} // namespace

TEST_CASE("a NEW_PID_EXT of another node decodes to a remote pid", "[dist][identity]") {
    // <a.9.0> of a@127.0.0.1, creation 0x6b00d485, as OTP 25 sent it (doc section 5.2).
    auto bytes =
        with_node({131, 88}, "a@127.0.0.1", {0, 0, 0, 9, 0, 0, 0, 0, 0x6b, 0x00, 0xd4, 0x85});
    term t = erl::etf::decode(bytes);
    REQUIRE(t.is_pid());
    erl::pid p = t.as_pid();
    CHECK(p.node() == "a@127.0.0.1"_a);
    CHECK(p.number() == 9);
    CHECK(p.serial() == 0);
    CHECK(p.creation() == 0x6b00d485u);
    CHECK_FALSE(p.is_local());
    // Printed with a non-zero node number, as Erlang prints a remote pid; the same number in the
    // erl::pid and erl::term printers.
    auto text = fmt::format("{}", p);
    CHECK(text.ends_with(".9.0>"));
    CHECK_FALSE(text.starts_with("<0."));
    CHECK(fmt::format("{}", t) == text);
    // Re-encoded exactly (NEW_PID_EXT, 32-bit creation).
    CHECK(erl::etf::encode(term(p)) == bytes);
    // Full 32-bit number and serial (V4_NC pids).
    erl::pid big("a@127.0.0.1"_a, 0xFFFFFFFFu, 0xFFFFFFFFu, 1);
    CHECK(erl::etf::decode(erl::etf::encode(term(big))).as_pid() == big);
}

TEST_CASE("pids order as OTP orders them: serial then number then node", "[dist][identity]") {
    // OTP 25: pid(x@h, id 5, cr 1) > pid(x@h, id 3, cr 2); pid(x@h, 5) > pid(y@h, 1);
    // pid(id 5, serial 0) < pid(id 3, serial 1); same numbers: node name, then creation.
    erl::pid a("x@h"_a, 5, 0, 1), b("x@h"_a, 3, 0, 2), c("y@h"_a, 1, 0, 1), d("x@h"_a, 3, 1, 1);
    erl::pid e("y@h"_a, 5, 0, 1), f("x@h"_a, 5, 0, 2);
    CHECK(b < a);
    CHECK(c < a);
    CHECK(a < d);
    CHECK(a < e);
    CHECK(a < f);
    // erl::term agrees with erl::pid.
    std::vector<erl::pid> pids{a, b, c, d, e, f};
    std::vector<term> terms(pids.begin(), pids.end());
    std::sort(pids.begin(), pids.end());
    std::sort(terms.begin(), terms.end());
    for (std::size_t i = 0; i < pids.size(); ++i)
        CHECK(terms[i].as_pid() == pids[i]);
}

TEST_CASE("references hold one to five words and compare as OTP does", "[dist][identity]") {
    std::array<std::uint32_t, 5> five{5, 0, 1, 0, 0};
    erl::ref r5("x@h"_a, 1, std::span<const std::uint32_t>(five));
    erl::ref r3("x@h"_a, 1, {5, 0, 1});
    CHECK(r5.words().size() == 5);
    // Missing words count as zero: OTP says #Ref<N.1.0.5> =:= the same ref in five words.
    CHECK(r5 == r3);
    CHECK(std::hash<erl::ref>{}(r5) == std::hash<erl::ref>{}(r3));
    CHECK(term(r5) == term(r3));
    CHECK(term(r5).hash() == term(r3).hash());
    // Node (name, creation) first, then the words from the most significant.
    std::array<std::uint32_t, 5> hi{5, 0, 0, 0, 1};
    erl::ref r5hi("x@h"_a, 1, std::span<const std::uint32_t>(hi));
    CHECK(r3 < r5hi);
    CHECK(term(r3) < term(r5hi));
    erl::ref w5("x@h"_a, 1, {5, 0, 0}), w3("x@h"_a, 2, {3, 0, 0}), y3("y@h"_a, 1, {3, 0, 0});
    CHECK(w5 < w3); // creation before words
    CHECK(term(w5) < term(w3));
    CHECK(w5 < y3); // node name before words
    CHECK(term(w5) < term(y3));
    std::array<std::uint32_t, 1> one{7};
    erl::ref r1("x@h"_a, 1, std::span<const std::uint32_t>(one));
    CHECK(r1.words().size() == 1);
    CHECK_THROWS_AS(erl::ref("x@h"_a, 1, std::span<const std::uint32_t>()), std::invalid_argument);
    std::unordered_set<erl::ref> set{r3, r5, r1};
    CHECK(set.size() == 2);
}

TEST_CASE("a five-word NEWER_REFERENCE_EXT round-trips through erl::ref", "[dist][identity]") {
    auto bytes = with_node({131, 90, 0, 5}, "b@127.0.0.1", {0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2,
                                                            0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5});
    term t = erl::etf::decode(bytes);
    erl::ref r = t.as_ref();
    CHECK(r.creation() == 7);
    CHECK(r.words().size() == 5);
    CHECK(r.words()[4] == 5);
    CHECK(erl::etf::encode(term(r)) == bytes);
    CHECK_FALSE(r.is_local());
    // Printed like OTP: the most significant word first, with the node's number.
    auto text = fmt::format("{}", r);
    CHECK(text.ends_with(".5.4.3.2.1>"));
    CHECK_FALSE(text.starts_with("#Ref<0."));
    CHECK(fmt::format("{}", t) == text);
    CHECK(erl::from_term<erl::ref>(t) == r);
}

TEST_CASE("local references still print as #Ref<0.a.b.c>", "[dist][identity]") {
    erl::ref r(erl::atoms::nonode_nohost, 0, {3, 2, 1});
    CHECK(fmt::format("{}", r) == "#Ref<0.1.2.3>");
    CHECK(fmt::format("{}", term(r)) == "#Ref<0.1.2.3>");
}

TEST_CASE("V4_PORT_EXT ports of other nodes decode and order node first", "[dist][identity]") {
    auto bytes = with_node({131, 120}, "a@127.0.0.1", {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3});
    term p = erl::etf::decode(bytes);
    REQUIRE(p.is_port());
    CHECK(p.id() == (std::uint64_t(1) << 32) + 2);
    CHECK(p.creation() == 3);
    CHECK(erl::etf::encode(p) == bytes);
    // OTP: port(x@h, 5, cr 1) < port(y@h, 3, cr 1) and port(x@h, 5, cr 1) < port(x@h, 3, cr 2).
    CHECK(term::port("x@h"_a, 5, 1) < term::port("y@h"_a, 3, 1));
    CHECK(term::port("x@h"_a, 5, 1) < term::port("x@h"_a, 3, 2));
}

TEST_CASE("atom::existing finds interned atoms without interning", "[dist][identity]") {
    CHECK(erl::atom::existing("ok") == erl::atoms::ok);
    auto before = erl::atom::table_size();
    CHECK_FALSE(erl::atom::existing("surely_never_interned_dist_test_atom").has_value());
    CHECK(erl::atom::table_size() == before);
}
