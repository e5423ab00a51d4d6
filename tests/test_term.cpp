#include <catch2/catch.hpp>

#include <erl/term.hpp>
#include <erl/term_convert.hpp>
#include <erl/term_match.hpp>

#include <map>
#include <unordered_map>
#include <unordered_set>

using namespace erl::literals;
using erl::term;

TEST_CASE("terms are built naturally and copied cheaply", "[term]") {
    term t = erl::tuple("ok"_a, 42, erl::list(1, 2.5, "bin"), erl::map{{"a"_a, 1}});
    CHECK(t.is_tuple(4));
    CHECK(t[0].is_atom("ok"_a));
    CHECK(t[1].as_int64() == 42);
    CHECK(t[2].size() == 3);
    CHECK(t[2][1].as_double() == 2.5);
    CHECK(t[2][2].as_string_view() == "bin");
    CHECK(t[3].find(term("a"_a))->as_int64() == 1);
    CHECK(t[3].find(term("b"_a)) == nullptr);
    term copy = t; // shares the payload
    CHECK(copy == t);
    CHECK(&copy[2] == &t[2]);
    CHECK(term().is_nil());
    CHECK(term(true).is_atom(erl::atoms::true_));
    CHECK(term(std::uint64_t(1) << 63).is_integer());
    CHECK_FALSE(term(std::uint64_t(1) << 63).is_small_int());
    CHECK_THROWS_AS(term(1.0 / 0.0), std::invalid_argument);
    CHECK_THROWS_AS(t.as_int64(), erl::bad_term_access);
    CHECK_THROWS_AS(t[9], std::out_of_range);
    CHECK(erl::improper_list({term(1)}, term("x"_a)).tail().is_atom("x"_a));
    CHECK(erl::charlist("hé") == erl::list(104, 233));
}

TEST_CASE("pids / refs / ports and funs are terms", "[term]") {
    erl::pid p("n@h"_a, 1, 2, 3);
    term tp(p);
    CHECK(tp.is_pid());
    CHECK(tp.as_pid() == p);
    erl::ref r("n@h"_a, 7, {1, 2, 3});
    CHECK(term(r).as_ref() == r);
    std::uint32_t words[] = {1, 2, 3, 4, 5};
    term r5 = term::reference("n@h"_a, 1, words);
    CHECK(r5.ref_words().size() == 5);
    CHECK(r5.as_ref().words().size() == 5); // erl::ref holds 1 to 5 words, like OTP's refs
    CHECK(term(r5.as_ref()) == r5);
    term port = term::port("n@h"_a, 1ull << 40, 2);
    CHECK(port.id() == 1ull << 40);
    CHECK(port.node_name() == "n@h");
    term f = term::export_fun("lists"_a, "map"_a, 2);
    CHECK(f.to_string() == "fun lists:map/2");
    CHECK(term::parse("fun lists:map/2") == f);
}

TEST_CASE("printing uses Erlang syntax", "[term][fmt]") {
    CHECK(fmt::format("{}", erl::tuple("ok"_a, erl::list(1, 2, 3))) == "{ok,[1,2,3]}");
    CHECK(fmt::format("{}", term("bin")) == "<<\"bin\">>");
    CHECK(fmt::format("{}", term(erl::map{{"a"_a, 1}})) == "#{a => 1}");
    CHECK(term::parse("[a,b|c]").to_string() == "[a,b|c]");
    CHECK(term::parse("\"hi\\n\"").to_string() == "\"hi\\n\"");
    CHECK(term::parse("[104, 300]").to_string() == "[104,300]");
    CHECK(term::parse("<<1,2,3:4>>").to_string() == "<<1,2,3:4>>");
    CHECK(term::parse("<<>>").to_string() == "<<>>");
    CHECK(term::parse("<<0,200>>").to_string() == "<<0,200>>");
    CHECK(term::parse("'hello world'").to_string() == "'hello world'");
    CHECK(term::parse("{}").to_string() == "{}");
    CHECK(term::parse("-123456789012345678901234567890").to_string() ==
          "-123456789012345678901234567890");
    // Floats: shortest round-trip digits, laid out as Erlang's ~p does (checked against OTP 25).
    const std::pair<double, const char*> floats[] = {
        {1.0, "1.0"},
        {0.1, "0.1"},
        {1.0e20, "1.0e20"},
        {1.0e15, "1.0e15"},
        {1.0e-5, "1.0e-5"},
        {0.001, "0.001"},
        {0.0001, "0.0001"},
        {1.2345e-7, "1.2345e-7"},
        {5e-324, "5.0e-324"},
        {-0.0, "-0.0"},
        {2.5, "2.5"},
        {100.0, "100.0"},
        {1000.0, "1.0e3"},
        {123.0, "123.0"},
        {12340.0, "12340.0"},
        {123400.0, "1.234e5"},
        {0.0015, "0.0015"},
        {0.00012, "1.2e-4"},
        {12345.678, "12345.678"},
        {1.2345678901234568e17, "1.2345678901234568e17"},
        {1.5e300, "1.5e300"}};
    for (auto [d, s] : floats) {
        CAPTURE(d);
        CHECK(term(d).to_string() == s);
        CHECK(term::parse(s).as_double() == d);
    }
}

TEST_CASE("the parser reads Erlang literals", "[term][parse]") {
    CHECK(term::parse("{ok, [1, 2]}") == erl::tuple("ok"_a, erl::list(1, 2)));
    CHECK(term::parse("{ok, [1, 2]}.") == erl::tuple("ok"_a, erl::list(1, 2)));
    CHECK(term::parse("16#FF").as_int64() == 255);
    CHECK(term::parse("-2#101").as_int64() == -5);
    CHECK(term::parse("1_000_000").as_int64() == 1000000);
    CHECK(term::parse("$a").as_int64() == 'a');
    CHECK(term::parse("$\\n").as_int64() == '\n');
    CHECK(term::parse("\"ab\" \"cd\"") == erl::charlist("abcd"));
    CHECK(term::parse("<<\"é\"/utf8>>").as_string_view() == "é");
    CHECK(term::parse("<<\"\\x{e9}\">>").bytes()[0] == 0xE9);
    CHECK(term::parse("#{a => 1, \"k\" => [x]}").size() == 2);
    CHECK(term::parse("'\\x{65e5}'").atom_name() == "日");
    CHECK(term::parse("% comment\n [ ] ").is_nil());
    CHECK(term::parse("1.5e-3").as_double() == 1.5e-3);
    CHECK(term::parse("[a|[b|[]]]") == erl::list("a"_a, "b"_a));
    CHECK_THROWS_AS(term::parse("{ok, X}"), erl::term_parse_error);
    CHECK_THROWS_AS(term::parse("{ok"), erl::term_parse_error);
    CHECK_THROWS_AS(term::parse("[1,]"), erl::term_parse_error);
    CHECK_THROWS_AS(term::parse("1 2"), erl::term_parse_error);
    CHECK_THROWS_AS(term::parse("\"abc"), erl::term_parse_error);
    CHECK_THROWS_AS(term::parse(std::string(5000, '[')), erl::term_parse_error);
    try {
        term::parse("{ok, @}");
        FAIL("no throw");
    } catch (const erl::term_parse_error& e) {
        CHECK(e.offset() == 5);
    }
}

TEST_CASE("== is arithmetic / =:= is exact / and the term order is Erlang's", "[term][order]") {
    CHECK(erl::equal(term(1), term(1.0)));
    CHECK_FALSE(term(1) == term(1.0));
    CHECK(std::is_eq(erl::compare(term(1), term(1.0))));
    CHECK(term(1) < term(1.0)); // exact order: integers first on a tie
    CHECK(term(2) > term(1.5));
    CHECK(term(-0.0) != term(0.0));
    CHECK(erl::equal(term(-0.0), term(0.0)));
    CHECK(term(erl::bigint::parse("18446744073709551616").value()) > term(1.8e19));
    CHECK(term(erl::bigint::parse("18446744073709551616").value()) < term(1.9e19));
    CHECK(erl::equal(term(erl::bigint::parse("18446744073709551616").value()),
                     term(18446744073709551616.0)));
    CHECK(term(9007199254740993) > term(9007199254740992.0));
    // number < atom < reference < fun < port < pid < tuple < map < nil < list < bitstring
    std::uint32_t w[] = {1, 2, 3};
    std::vector<term> order = {term(1),
                               term("a"_a),
                               term::reference("n@h"_a, 1, w),
                               term::export_fun("m"_a, "f"_a, 0),
                               term::port("n@h"_a, 1, 1),
                               term::pid("n@h"_a, 1, 0, 1),
                               erl::tuple(),
                               erl::map{},
                               term(),
                               erl::list(1),
                               term("")};
    for (std::size_t i = 0; i + 1 < order.size(); ++i) {
        CAPTURE(i);
        CHECK(order[i] < order[i + 1]);
        CHECK(std::is_lt(erl::compare(order[i], order[i + 1])));
    }
    CHECK(term::parse("{1,2}") < term::parse("{0,0,0}")); // tuples by size first
    CHECK(term::parse("#{a => 2}") < term::parse("#{b => 1}"));
    CHECK(term::parse("[a]") < term::parse("[a,b]"));
    CHECK(term::parse("[a|b]") < term::parse("[a,b]")); // atom tail < list
    CHECK(term::parse("<<1:1>>") < term::parse("<<128>>"));
    CHECK(term::parse("<<128>>") < term::parse("<<128,0:1>>"));
    CHECK(term::parse("'b'") > term::parse("'a'"));
    CHECK(erl::equal(term::parse("{1, [2.0]}"), term::parse("{1.0, [2]}")));
}

TEST_CASE("terms hash consistently with =:=", "[term][hash]") {
    std::unordered_set<term> set;
    set.insert(term::parse("{a, [1, 2], #{k => <<\"v\">>}}"));
    set.insert(term(1));
    set.insert(term(1.0));
    CHECK(set.size() == 3);
    CHECK(set.count(term::parse("{a, [1, 2], #{k => <<\"v\">>}}")) == 1);
    std::map<term, int> m{{term(2), 2}, {term("x"_a), 1}};
    CHECK(m.begin()->second == 2);
    // A long atom kept as text equals, orders and hashes like any atom.
    term a = term::make_atom("plain");
    CHECK(a.hash() == term("plain"_a).hash());
}

TEST_CASE("maps keep unique keys in term order", "[term][map]") {
    term m = erl::map{{term(2), "b"_a}, {term(1), "a"_a}, {term(1.0), "f"_a}, {term(2), "c"_a}};
    REQUIRE(m.size() == 3);
    auto e = m.map_entries();
    CHECK(e[0].first == term(1));
    CHECK(e[1].first == term(1.0));
    CHECK(e[2].second.is_atom("c"_a)); // the last of equal keys wins
}

TEST_CASE("patterns match with wildcards and bindings", "[term][match]") {
    auto p = erl::pattern::parse("{put, Key, _}");
    auto b = erl::match(term::parse("{put, <<\"k\">>, 42}"), p);
    REQUIRE(b);
    CHECK((*b)["Key"].as_string_view() == "k");
    CHECK(b->size() == 1);
    CHECK(b->get<std::string>("Key") == "k");
    CHECK_FALSE(erl::match(term::parse("{get, k, 1}"), p));
    CHECK_FALSE(erl::match(term::parse("{put, k}"), p));

    auto same = erl::pattern::parse("{X, X}");
    CHECK(erl::matches(term::parse("{1, 1}"), same));
    CHECK_FALSE(erl::matches(term::parse("{1, 1.0}"), same)); // =:=, as in Erlang

    auto ht = erl::pattern::parse("[H | T]");
    auto m = erl::match(term::parse("[1, 2, 3]"), ht);
    REQUIRE(m);
    CHECK((*m)["H"] == term(1));
    CHECK((*m)["T"] == erl::list(2, 3));
    CHECK_FALSE(erl::matches(term(), ht));

    auto mp = erl::pattern::parse("#{name := N, age => 3}");
    auto mm = erl::match(term::parse("#{name => \"bob\", age => 3, extra => x}"), mp);
    REQUIRE(mm);
    CHECK(mm->get<std::string>("N") == "bob");
    CHECK_FALSE(erl::matches(term::parse("#{name => x}"), mp));

    using namespace erl;
    auto built = pat::tuple("call"_a, pat::var("From"), pat::tuple("get"_a, pat::_));
    auto r =
        match(erl::tuple("call"_a, term::pid("n@h"_a, 1, 0, 1), erl::tuple("get"_a, 7)), built);
    REQUIRE(r);
    CHECK((*r)["From"].is_pid());
    CHECK(built.to_string() == "{call,From,{get,_}}");
    CHECK(built.variables() == std::vector<std::string>{"From"});
    CHECK(matches(term(1), pattern(1)));
    CHECK(matches(erl::list(1, 2), pat::cons({pattern(1)}, pat::_)));
    CHECK_THROWS_AS(erl::pattern::parse("#{K => 1}"), erl::term_parse_error);
    CHECK_THROWS_AS((*r)["Nope"], std::out_of_range);
}

namespace {
struct point {
    int x = 0;
    int y = 0;
    friend bool operator==(const point&, const point&) = default;
};
struct person {
    std::string name;
    std::optional<int> age;
    std::vector<point> path;
    friend bool operator==(const person&, const person&) = default;
};
struct rec {
    double v = 0;
    erl::atom tag;
};
} // namespace

template <>
struct erl::term_struct<point> {
    static constexpr auto fields =
        std::make_tuple(erl::field("x", &point::x), erl::field("y", &point::y));
};
template <>
struct erl::term_struct<person> {
    static constexpr auto fields =
        std::make_tuple(erl::field("name", &person::name), erl::field("age", &person::age),
                        erl::field("path", &person::path));
};
template <>
struct erl::term_struct<rec> {
    static constexpr std::string_view record = "rec";
    static constexpr auto fields =
        std::make_tuple(erl::field("v", &rec::v), erl::field("tag", &rec::tag));
};

TEST_CASE("to_term and from_term convert C++ values", "[term][convert]") {
    using erl::from_term;
    using erl::to_term;
    CHECK(to_term(42) == term(42));
    CHECK(from_term<int>(term(42)) == 42);
    CHECK(from_term<std::uint64_t>(term(std::uint64_t(-1))) == std::uint64_t(-1));
    CHECK(from_term<double>(term(2)) == 2.0);
    CHECK(to_term(true) == term("true"_a));
    CHECK(from_term<bool>(term::parse("false")) == false);
    CHECK(to_term(std::string("s")) == term("s"));
    CHECK(from_term<std::string>(term::parse("\"chars\"")) == "chars");
    CHECK(from_term<std::string_view>(term("v")) == "v");
    CHECK(to_term(std::vector<int>{1, 2}) == erl::list(1, 2));
    CHECK(from_term<std::list<int>>(erl::list(1, 2)) == std::list<int>{1, 2});
    CHECK(to_term(std::make_pair(1, "ok"_a)) == erl::tuple(1, "ok"_a));
    CHECK(from_term<std::tuple<int, std::string>>(term::parse("{1, <<\"a\">>}")) ==
          std::tuple<int, std::string>{1, "a"});
    std::map<std::string, int> m{{"a", 1}};
    CHECK(from_term<std::map<std::string, int>>(to_term(m)) == m);
    std::unordered_map<int, bool> um{{1, true}};
    CHECK(from_term<std::unordered_map<int, bool>>(to_term(um)) == um);
    CHECK(to_term(std::optional<int>{}) == term("undefined"_a));
    CHECK(from_term<std::optional<int>>(term(3)) == 3);
    using V = std::variant<int, std::string>;
    CHECK(from_term<V>(term("x")) == V(std::string("x")));
    CHECK(from_term<V>(term(1)) == V(1));
    CHECK(from_term<erl::atom>(term("ok"_a)) == "ok"_a);
    erl::pid p("n@h"_a, 1, 2, 3);
    CHECK(from_term<erl::pid>(to_term(p)) == p);

    person bob{"bob", 42, {{1, 2}, {3, 4}}};
    term tb = to_term(bob);
    CHECK(tb.to_string() ==
          "#{age => 42,name => <<\"bob\">>,path => [#{x => 1,y => 2},#{x => 3,y => 4}]}");
    CHECK(from_term<person>(tb) == bob);
    CHECK(from_term<person>(term::parse("#{name => <<\"a\">>, path => []}")).age == std::nullopt);
    CHECK(to_term(rec{1.5, "t"_a}).to_string() == "{rec,1.5,t}");
    CHECK(from_term<rec>(term::parse("{rec, 2, x}")).v == 2.0);
}

TEST_CASE("from_term reports the path and the expected type", "[term][convert]") {
    using erl::from_term;
    try {
        from_term<person>(
            term::parse("#{name => <<\"b\">>, path => [#{x => 1, y => 2}, #{x => 1, y => foo}]}"));
        FAIL("no throw");
    } catch (const erl::term_conversion_error& e) {
        CHECK(e.path() == "$.path[1].y");
        CHECK(e.expected() == "integer in -2147483648..2147483647");
        CHECK(std::string(e.what()).find("got foo") != std::string::npos);
    }
    try {
        from_term<std::tuple<int, std::map<erl::atom, std::uint8_t>>>(
            term::parse("{1, #{k => 300}}"));
        FAIL("no throw");
    } catch (const erl::term_conversion_error& e) {
        CHECK(e.path() == "${2}#{k}");
        CHECK(e.expected() == "integer in 0..255");
    }
    try {
        from_term<person>(term::parse("#{path => []}"));
        FAIL("no throw");
    } catch (const erl::term_conversion_error& e) {
        CHECK(e.path() == "$.name");
    }
    CHECK_THROWS_AS(from_term<int>(term(1.5)), erl::term_conversion_error);
    CHECK_THROWS_AS(from_term<std::vector<int>>(term::parse("[1|2]")), erl::term_conversion_error);
    CHECK(erl::try_from_term<int>(term("x"_a)) == std::nullopt);
}

TEST_CASE("exit reasons convert to and from terms", "[term][convert]") {
    using erl::exit_reason;
    CHECK(erl::to_term(exit_reason::normal()) == term("normal"_a));
    CHECK(erl::to_term(exit_reason::shutdown("restart")) ==
          term::parse("{shutdown, <<\"restart\">>}"));
    CHECK(erl::from_term<exit_reason>(term::parse("killed")) == exit_reason::killed());
    CHECK(erl::from_term<exit_reason>(term::parse("{shutdown, \"restart\"}")) ==
          exit_reason::shutdown("restart"));
    auto r = erl::from_term<exit_reason>(term::parse("{badarg, [{m, f, 1}]}"));
    CHECK(r.tag() == "badarg"_a);
    CHECK(r.detail() == "[{m,f,1}]");
    auto ex = exit_reason::from_exception(std::make_exception_ptr(std::runtime_error("boom")));
    CHECK(erl::to_term(ex) == term::parse("{exception, <<\"std::runtime_error\">>, <<\"boom\">>}"));
}

TEST_CASE("deep terms are destroyed without recursion", "[term]") {
    term t;
    for (int i = 0; i < 200000; ++i)
        t = erl::tuple(std::move(t));
    t = term(); // would overflow the stack if destruction recursed
    SUCCEED();
}
