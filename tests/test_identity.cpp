#include <catch2/catch.hpp>

#include <erl/atom.hpp>
#include <erl/exit_reason.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <unordered_set>

using namespace erl::literals;

TEST_CASE("atoms are interned and compare by value", "[identity]") {
    erl::atom a("hello"), b("hello"), c("world");
    CHECK(a == b);
    CHECK(a.index() == b.index());
    CHECK(a != c);
    CHECK(a < c); // ordered by text, like Erlang
    CHECK("ok"_a == erl::atoms::ok);
    CHECK(erl::atom().name().empty());
    CHECK_THROWS_AS(erl::atom(std::string(256, 'x')), std::length_error);
}

TEST_CASE("atoms print as Erlang prints them", "[identity][fmt]") {
    CHECK(fmt::format("{}", "ok"_a) == "ok");
    CHECK(fmt::format("{}", "nonode@nohost"_a) == "nonode@nohost");
    CHECK(fmt::format("{}", "hello world"_a) == "'hello world'");
    CHECK(fmt::format("{}", "Ok"_a) == "'Ok'");
    CHECK(fmt::format("{}", erl::atom()) == "''");
    CHECK(fmt::format("{}", "it's"_a) == "'it\\'s'");
    CHECK(fmt::format("{}", "receive"_a) == "'receive'");
    CHECK(fmt::format("{}", "a_B@1"_a) == "a_B@1");
}

TEST_CASE("pids print like Erlang's and are hashable and ordered", "[identity][fmt]") {
    erl::pid p(erl::atoms::nonode_nohost, 42, 0, 1);
    CHECK(fmt::format("{}", p) == "<0.42.0>");
    CHECK(p.is_local());
    CHECK(!erl::pid().operator bool());
    erl::pid q(erl::atoms::nonode_nohost, 43, 0, 1);
    CHECK(p < q);
    std::unordered_set<erl::pid> s{p, q, p};
    CHECK(s.size() == 2);
    erl::pid remote("other@host"_a, 7, 1, 3);
    CHECK(!remote.is_local());
    CHECK(fmt::format("{}", remote).starts_with("<"));
    CHECK(fmt::format("{}", remote).ends_with(".7.1>"));
}

TEST_CASE("references print as #Ref<0.a.b.c>", "[identity][fmt]") {
    erl::ref r(erl::atoms::nonode_nohost, 0, {3, 2, 1});
    CHECK(fmt::format("{}", r) == "#Ref<0.1.2.3>");
    CHECK(!erl::ref());
}

TEST_CASE("references are equal only when node creation and every word are", "[identity]") {
    const std::array<std::uint32_t, 5> w{1, 2, 3, 4, 5};
    const erl::ref r("a@h"_a, 7, std::span<const std::uint32_t>(w));
    CHECK(r == erl::ref("a@h"_a, 7, std::span<const std::uint32_t>(w)));
    for (std::size_t i = 0; i < w.size(); ++i) { // each word, the lowest to the highest
        auto v = w;
        v[i] ^= 0x80000000u;
        CHECK(r != erl::ref("a@h"_a, 7, std::span<const std::uint32_t>(v)));
    }
    CHECK(r != erl::ref("b@h"_a, 7, std::span<const std::uint32_t>(w)));
    CHECK(r != erl::ref("a@h"_a, 8, std::span<const std::uint32_t>(w)));
    // Missing words count as zero, whatever the length.
    const std::array<std::uint32_t, 5> three{1, 2, 3, 0, 0};
    CHECK(erl::ref("a@h"_a, 7, {1, 2, 3}) ==
          erl::ref("a@h"_a, 7, std::span<const std::uint32_t>(three)));
    CHECK(erl::ref() == erl::ref());
}

TEST_CASE("exit reasons express Erlang's reasons and print in Erlang syntax", "[identity]") {
    CHECK(erl::exit_reason().is_normal());
    CHECK(fmt::format("{}", erl::exit_reason::killed()) == "killed");
    CHECK(fmt::format("{}", erl::exit_reason::shutdown("restart")) == "{shutdown,\"restart\"}");
    CHECK(erl::exit_reason::shutdown("x").is_shutdown());
    CHECK(erl::exit_reason::shutdown() == erl::exit_reason(erl::atoms::shutdown));
    CHECK(erl::exit_reason::shutdown("a") != erl::exit_reason::shutdown("b"));
    erl::exit_reason e;
    try {
        throw std::runtime_error("boom");
    } catch (...) {
        e = erl::exit_reason::from_exception(std::current_exception());
    }
    CHECK(e.is_exception());
    CHECK(e.exception_type() == "std::runtime_error");
    CHECK(e.detail() == "boom");
    CHECK(fmt::format("{}", e) == "{exception,'std::runtime_error',\"boom\"}");
    CHECK_THROWS_AS(std::rethrow_exception(e.exception()), std::runtime_error);
}
