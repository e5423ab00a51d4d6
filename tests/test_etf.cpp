#include <catch2/catch.hpp>

#include <erl/detail/term_util.hpp>
#include <erl/etf.hpp>
#include <erl/term.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace erl::literals;
using erl::term;
using bytes = std::vector<std::uint8_t>;
namespace etf = erl::etf;

namespace {

std::string hex(const bytes& b) {
    static constexpr char d[] = "0123456789ABCDEF";
    std::string s;
    for (auto c : b) {
        s.push_back(d[c >> 4]);
        s.push_back(d[c & 15]);
    }
    return s;
}

bytes unhex(std::string_view s) {
    bytes b;
    auto v = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    for (std::size_t i = 0; i + 1 < s.size(); i += 2)
        b.push_back(std::uint8_t(v(s[i]) * 16 + v(s[i + 1])));
    return b;
}

// The offset of the etf_error thrown for `b`, or a failed check.
std::size_t error_offset(const bytes& b, const etf::decode_options& o = {}) {
    try {
        etf::decode(b, o);
    } catch (const erl::etf_error& e) {
        return e.offset();
    }
    FAIL("decoded without error: " << hex(b));
    return 0;
}

const term& zoo() {
    static const term t = [] {
        std::uint32_t w[] = {1, 2, 3};
        return erl::tuple(0, 255, 256, -1, std::int64_t(1) << 40, -(std::int64_t(1) << 40),
                          INT64_MIN, term::parse("123456789012345678901234567890123"), 1.5, -0.0,
                          "ok"_a, term::make_atom("ünï"), erl::list(1, 2, 3),
                          erl::improper_list({term("a"_a)}, term("b"_a)), term("bin"),
                          term::parse("<<5:3>>"), erl::map{{"k"_a, erl::list()}, {term(1), 2.0}},
                          term::pid("n@h"_a, 1, 2, 3), term::port("n@h"_a, 4, 5),
                          term::reference("n@h"_a, 6, w), term::export_fun("lists"_a, "map"_a, 2),
                          term::tuple_from(std::vector<term>(300, term(7))),
                          erl::charlist("string"), term(std::string(300, 'x')));
    }();
    return t;
}

} // namespace

TEST_CASE("ETF encodes as OTP does", "[etf]") {
    CHECK(hex(etf::encode(term(1))) == "836101");
    CHECK(hex(etf::encode(term(-1))) == "8362FFFFFFFF");
    CHECK(hex(etf::encode(term(std::int64_t(1) << 31))) == "836E040000000080");
    CHECK(hex(etf::encode(term(-(std::int64_t(1) << 40)))) == "836E0601000000000001");
    CHECK(hex(etf::encode(term("ok"_a))) == "8377026F6B");
    CHECK(hex(etf::encode(term(1.5))) == "8346"
                                         "3FF8000000000000");
    CHECK(hex(etf::encode(erl::list(1, 2, 3))) == "836B0003010203");
    CHECK(hex(etf::encode(erl::list("a"_a))) == "836C000000017701616A");
    CHECK(hex(etf::encode(erl::tuple())) == "836800");
    CHECK(hex(etf::encode(term())) == "836A");
    CHECK(hex(etf::encode(term::parse("<<5:3>>"))) == "834D0000000103A0");
    CHECK(hex(etf::encode(term::pid("a@b"_a, 1, 2, 3))) == "8358770361406200000001000000020000"
                                                           "0003");
}

TEST_CASE("ETF round-trips every kind of term", "[etf]") {
    auto b = etf::encode(zoo());
    term back = etf::decode(b);
    CHECK(back == zoo());
    CHECK(etf::encode(back) == b);
    auto z = etf::encode(zoo(), {.compression = 6});
    CHECK(z[1] == 80);
    CHECK(z.size() < b.size());
    CHECK(etf::decode(z) == zoo());
    CHECK(etf::encode(term(1), {.compression = 9}).size() == 3); // not worth compressing

    // decode_body: several terms back to back, as in distribution messages.
    bytes two;
    etf::encode_body(two, term(1));
    etf::encode_body(two, term("x"_a));
    std::size_t off = 0;
    CHECK(etf::decode_body(two, off) == term(1));
    CHECK(etf::decode_body(two, off) == term("x"_a));
    CHECK(off == two.size());

    // A 255-character Unicode atom is longer than 255 bytes: ATOM_UTF8_EXT.
    std::string long_name;
    for (int i = 0; i < 255; ++i)
        long_name += "日";
    term la = term::make_atom(long_name);
    auto lb = etf::encode(la);
    CHECK(lb[1] == 118);
    CHECK(etf::decode(lb) == la);
    CHECK(la.atom_name() == long_name);
}

TEST_CASE("ETF decodes legacy and alternative encodings", "[etf]") {
    CHECK(etf::decode(unhex("83640002"
                            "6F6B")) == term("ok"_a));        // ATOM_EXT
    CHECK(etf::decode(unhex("837301E9")).atom_name() == "é"); // SMALL_ATOM_EXT latin-1
    CHECK(etf::decode(unhex("836C000000016101"
                            "6C0000000161026A")) == erl::list(1, 2)); // tail list
    CHECK(etf::decode(unhex("836C00000000"
                            "6A"))
              .is_nil());
    std::string f = "1.50000000000000000000e+00";
    bytes fb = {131, 99};
    fb.insert(fb.end(), f.begin(), f.end());
    fb.resize(2 + 31, 0);
    CHECK(etf::decode(fb) == term(1.5)); // FLOAT_EXT
    CHECK(etf::decode(unhex("8367"
                            "7703614062"
                            "00000001"
                            "00000002"
                            "03")) == term::pid("a@b"_a, 1, 2, 3)); // PID_EXT
    CHECK(etf::decode(unhex("8366"
                            "7703614062"
                            "00000001"
                            "03")) == term::port("a@b"_a, 1, 3));
    CHECK(etf::decode(unhex("8378"
                            "7703614062"
                            "0000010000000001"
                            "00000003"))
              .id() == (1ull << 40) + 1);
    CHECK(etf::decode(unhex("8372"
                            "0001"
                            "7703614062"
                            "03"
                            "00000009"))
              .ref_words()[0] == 9);
    CHECK(etf::decode(unhex("8365"
                            "7703614062"
                            "00000009"
                            "03"))
              .ref_words()
              .size() == 1);
    CHECK(etf::decode(unhex("834D0000000108FF")) == term::parse("<<255>>")); // 8 bits = binary
    CHECK(etf::decode(unhex("836E0300000000")).as_int64() == 0);             // zero-padded digits
}

TEST_CASE("malformed ETF is rejected with the offset", "[etf][hardening]") {
    CHECK(error_offset({}) == 0);
    CHECK(error_offset({130, 97, 1}) == 0);
    CHECK(error_offset({131}) == 1);
    CHECK(error_offset({131, 97, 1, 0}) == 3);           // trailing byte
    CHECK(error_offset({131, 200}) == 1);                // unknown tag
    CHECK(error_offset({131, 82, 0}) == 1);              // atom cache ref
    CHECK(error_offset({131, 117}) == 1);                // FUN_EXT
    CHECK(error_offset({131, 121}) == 1);                // LOCAL_EXT
    CHECK(error_offset({131, 104, 1, 131}) == 3);        // nested version byte
    CHECK(error_offset(unhex("8368018050000000")) == 3); // nested compressed
    CHECK(error_offset(unhex("8346"
                             "7FF0000000000000")) == 1); // infinity
    CHECK(error_offset(unhex("8346"
                             "7FF8000000000000")) == 1); // NaN
    CHECK(error_offset(unhex("8377"
                             "02"
                             "C328")) == 1); // bad UTF-8 atom
    CHECK(error_offset(unhex("836E"
                             "01"
                             "02"
                             "01")) == 2); // sign byte 2
    CHECK(error_offset(unhex("834D"
                             "00000001"
                             "00"
                             "FF")) == 1); // 0 trailing bits
    CHECK(error_offset(unhex("834D"
                             "00000001"
                             "09"
                             "FF")) == 1); // 9 trailing bits
    CHECK(error_offset(unhex("8374"
                             "00000002"
                             "6101"
                             "6102"
                             "6101"
                             "6103")) == 1); // dup keys
    CHECK(error_offset(unhex("8358"
                             "6101"
                             "00000001000000020000000003")) == 1); // node not atom
    CHECK(error_offset(unhex("835A"
                             "0006"
                             "770161"
                             "00000001")) == 1); // 6 ref words
    CHECK(error_offset(unhex("8371"
                             "770161"
                             "770162"
                             "62000001FF")) == 1); // arity 511
    // An atom of 256 characters.
    bytes a256(4 + 256, 'a'); // built whole: GCC 12 misreports insert() into a small vector
    a256[0] = 131;
    a256[1] = 118;
    a256[2] = 1;
    a256[3] = 0;
    CHECK(error_offset(a256) == 1);
    // NEW_FUN_EXT whose Size disagrees with its content.
    auto fun_bytes = unhex("8370"
                           "00000040"
                           "00"
                           "000102030405060708090A0B0C0D0E0F"
                           "00000000"
                           "00000000"
                           "770161"
                           "6100"
                           "6100"
                           "5877016100000000000000000000000000");
    CHECK(error_offset(fun_bytes) == 1);
}

TEST_CASE("length fields are checked against the input before allocating", "[etf][hardening]") {
    // Each claims about 4 G elements or bytes with a handful present.
    for (const char* h : {"836CFFFFFFFF6A", "8369FFFFFFFF", "836DFFFFFFFF00", "8374FFFFFFFF",
                          "834DFFFFFFFF0100", "836FFFFFFFFF00", "836BFFFF61", "8376FFFF61"}) {
        CAPTURE(h);
        CHECK(error_offset(unhex(h)) < std::string_view(h).size() / 2);
    }
    // Compressed: declared size above the cap, wrong declared size, garbage stream.
    CHECK(error_offset(unhex("8350FFFFFFFF789C")) == 1);
    auto z = etf::encode(term(std::string(1000, 'a')), {.compression = 9});
    REQUIRE(z[1] == 80);
    auto bigger = z;
    bigger[5] += 1; // declares one byte more than it inflates to
    CHECK(error_offset(bigger) == 1);
    auto smaller = z;
    smaller[5] -= 1; // inflates beyond its declared size
    error_offset(smaller);
    auto garbage = z;
    garbage[8] ^= 0xFF;
    error_offset(garbage);
    etf::decode_options small;
    small.max_inflated_size = 100;
    CHECK(error_offset(z, small) == 1);
    // Bignums above the digit limit.
    bytes big(7 + 0x8000, 1);
    for (std::size_t i = 0; i < 7; ++i)
        big[i] = std::array<std::uint8_t, 7>{131, 111, 0, 0, 0x80, 0, 0}[i];
    CHECK(error_offset(big) == 1);
}

TEST_CASE("every truncation of a valid term is an error / never a crash", "[etf][hardening]") {
    for (const auto& b : {etf::encode(zoo()), etf::encode(zoo(), {.compression = 6})}) {
        for (std::size_t n = 0; n < b.size(); ++n) {
            bytes prefix(b.begin(), b.begin() + std::ptrdiff_t(n));
            try {
                etf::decode(prefix);
                FAIL("prefix of " << n << " bytes decoded");
            } catch (const erl::etf_error& e) {
                CHECK(e.offset() <= n);
            }
        }
    }
}

TEST_CASE("nesting depth is limited without recursion", "[etf][hardening]") {
    // 100 000 nested 1-tuples: 200 KB of input.
    bytes deep = {131};
    for (int i = 0; i < 100000; ++i) {
        deep.push_back(104);
        deep.push_back(1);
    }
    deep.push_back(106);
    CHECK(error_offset(deep) == 1 + 2 * 512);
    etf::decode_options o;
    o.max_depth = 200000;
    term t = etf::decode(deep, o); // decodes iteratively, and is destroyed iteratively
    CHECK(t.is_tuple(1));
    // A deep improper-list chain is flattened, not nested.
    bytes chain = {131};
    for (int i = 0; i < 1000; ++i) {
        for (std::uint8_t c : {108, 0, 0, 0, 1, 97, 7})
            chain.push_back(c);
    }
    chain.push_back(106);
    o.max_depth = 2000;
    term l = etf::decode(chain, o);
    CHECK(l.size() == 1000);
    CHECK(l.is_proper_list());
}

TEST_CASE("decoded payloads outlive their message and are shared safely", "[etf][arena]") {
    // A small message is built into one arena; parts copied out keep it alive.
    term part, bin, inner;
    {
        term msg = etf::decode(etf::encode(term::parse(
            "{'$gen_call', {a, b}, {put, <<\"key\">>, #{x => [1, 2.5, <<\"v\">>], y => {}}}}")));
        part = msg[2][2];
        bin = msg[2][1];
        inner = erl::tuple(msg[1], (*msg[2][2].find("x"_a))[2]);
    }
    CHECK(bin.as_string_view() == "key");
    CHECK(part == term::parse("#{x => [1, 2.5, <<\"v\">>], y => {}}"));
    CHECK(inner == term::parse("{{a, b}, <<\"v\">>}"));
    part = term();
    CHECK(inner[1].as_string_view() == "v");
    // Copies on other threads.
    term shared = etf::decode(etf::encode(zoo()));
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
        threads.emplace_back([t = shared] {
            for (int k = 0; k < 1000; ++k) {
                term c = t[k % 20];
                (void)c.hash();
            }
        });
    shared = term();
    for (auto& th : threads)
        th.join();
    // Above 256 KiB of input, payloads are allocated one by one: the same terms come out.
    std::vector<term> many;
    for (int i = 0; i < 40000; ++i)
        many.push_back(erl::tuple(i, "ok"_a, term("payload")));
    term big = term::list_from(many);
    auto b = etf::encode(big);
    REQUIRE(b.size() > (256u << 10));
    term back = etf::decode(b);
    CHECK(back == big);
    term kept = back[39999];
    back = term();
    CHECK(kept == erl::tuple(39999, "ok"_a, term("payload")));
    for (std::size_t cut : {b.size() - 1, b.size() / 2, std::size_t(300)})
        CHECK(error_offset(bytes(b.begin(), b.begin() + std::ptrdiff_t(cut))) <= cut);
    // Deep nesting, allocated one by one and destroyed without recursion.
    bytes deep = {131};
    for (int i = 0; i < 150000; ++i) {
        deep.push_back(104);
        deep.push_back(1);
    }
    deep.push_back(106);
    etf::decode_options o;
    o.max_depth = 200000;
    CHECK(etf::decode(deep, o).is_tuple(1));
    deep[deep.size() - 2] = 2; // the innermost tuple lacks an element: all built is released
    CHECK(error_offset(deep, o) == deep.size() - 3); // its tag: 2 elements in 1 byte
}

TEST_CASE("arena and per-payload decoding give the same terms and errors", "[etf][arena]") {
    const auto plain = etf::encode(zoo()), packed = etf::encode(zoo(), {.compression = 6});
    auto previous = erl::detail::set_decode_arena_limit(0); // one block per payload
    term t = etf::decode(plain), z = etf::decode(packed);
    for (std::size_t n = 1; n < plain.size(); n += 7)
        error_offset(bytes(plain.begin(), plain.begin() + std::ptrdiff_t(n)));
    erl::detail::set_decode_arena_limit(previous);
    CHECK(t == zoo());
    CHECK(z == zoo());
    CHECK(t == etf::decode(plain));
}

TEST_CASE("list tails that are lists are joined in linear time", "[etf][hardening]") {
    // [0 | [1 | [2 | ...]]] sent as 100 000 nested LIST_EXT of one element each, then a
    // string tail: one flat list, without nesting limits (the result is not nested).
    bytes chain = {131};
    for (int i = 0; i < 100000; ++i)
        chain.insert(chain.end(), {108, 0, 0, 0, 1, 97, std::uint8_t(i % 200)});
    chain.insert(chain.end(), {107, 0, 2, 'h', 'i'});
    term l = etf::decode(chain);
    REQUIRE(l.size() == 100002);
    CHECK(l.is_proper_list());
    CHECK(l[99999].as_int64() == 99999 % 200);
    CHECK(l[100001].as_int64() == 'i');
    // Zero-element lists in the chain, and an improper end.
    CHECK(etf::decode(unhex("836C00000001610A"
                            "6C00000000"
                            "6C00000001610B"
                            "6C00000000"
                            "610C")) == erl::improper_list({term(10), term(11)}, term(12)));
    CHECK(etf::decode(unhex("836C00000001610A"
                            "6B0000")) == erl::list(10)); // empty string tail
    // Truncated inside a joined tail; a joined tail longer than the input.
    CHECK(error_offset(unhex("836C00000001610A"
                             "6C00000002610B61")) == 16);
    CHECK(error_offset(unhex("836C00000001610A"
                             "6C000000FF610B6A")) == 8);
}

TEST_CASE("maps in hash order are sorted and duplicate keys fail in place", "[etf][map]") {
    std::vector<std::pair<term, term>> kv;
    for (int i = 0; i < 40; ++i)
        kv.emplace_back(term(i), term(i * 2));
    term m = term::map_from(kv);
    // Re-encode with the keys in reverse order, as a hash-ordered map would come.
    bytes b = {131, 116, 0, 0, 0, 40};
    for (int i = 39; i >= 0; --i) {
        etf::encode_body(b, term(i));
        etf::encode_body(b, term(i * 2));
    }
    CHECK(etf::decode(b) == m);
    // Duplicates, inside a container: the partly built payloads are released.
    bytes d = {131, 104, 2, 109, 0, 0, 0, 1, 'x', 116, 0, 0, 0, 3};
    for (int k : {5, 6, 5}) {
        etf::encode_body(d, term(k));
        etf::encode_body(d, term("v"));
    }
    CHECK(error_offset(d) == 9);
}

TEST_CASE("atoms from the network cannot fill the atom table", "[etf][atoms]") {
    etf::decode_options o;
    o.atom_table_limit = 0; // keep every decoded atom out of the table
    std::size_t before = erl::atom::table_size();
    for (int i = 0; i < 1000; ++i) {
        std::string name = "never_interned_" + std::to_string(i);
        bytes b = {131, 119, std::uint8_t(name.size())};
        b.insert(b.end(), name.begin(), name.end());
        term t = etf::decode(b, o);
        CHECK(t.is_atom());
        CHECK(t.atom_name() == name);
    }
    CHECK(erl::atom::table_size() == before);
    // Such atoms still equal, order and hash like interned ones.
    term ok = etf::decode(bytes{131, 119, 2, 'o', 'k'}, o);
    CHECK(ok == term("ok"_a));
    CHECK(ok.is_atom("ok"_a));
    CHECK(ok.hash() == term("ok"_a).hash());
    CHECK(ok.as_atom() == "ok"_a); // interning on request
}

TEST_CASE("the OTP fixture decodes / compares and re-encodes", "[etf][fixture]") {
    auto path = std::filesystem::path(__FILE__).parent_path() / "etf_fixture" / "terms.txt";
    std::ifstream in(path);
    REQUIRE(in);
    std::string line;
    int count = 0, identical = 0;
    while (std::getline(in, line)) {
        auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
        char cls = line[0];
        bytes b = unhex(std::string_view(line).substr(t1 + 1, t2 - t1 - 1));
        std::string text = line.substr(t2 + 1);
        CAPTURE(count, cls, text.substr(0, 200));
        term t = etf::decode(b);
        bytes again = etf::encode(t);
        if (cls != 'O') {
            term expected = term::parse(text);
            CHECK(t == expected);
            // What we print reads back to the same term.
            CHECK(term::parse(t.to_string()) == t);
        }
        if (cls == 'C' || cls == 'O') {
            CHECK(hex(again) == hex(b));
            ++identical;
        } else {
            CHECK(etf::decode(again) == t);
        }
        ++count;
    }
    CHECK(count >= 200);
    CHECK(identical >= 150);
}

TEST_CASE("real Erlang agrees with us both ways", "[etf][erlang]") {
    if (std::system("command -v escript >/dev/null 2>&1") != 0) {
        WARN("escript not on PATH: skipping the live Erlang cross-check");
        return;
    }
    const std::vector<std::string> texts = {"{ok, [1, 2]}",
                                            "0",
                                            "-1",
                                            "255",
                                            "256",
                                            "2147483648",
                                            "-2147483649",
                                            "18446744073709551616",
                                            "-340282366920938463463374607431768211456",
                                            "1.0",
                                            "-0.0",
                                            "0.1",
                                            "1.0e20",
                                            "5.0e-324",
                                            "1.7976931348623157e308",
                                            "123456.789",
                                            "1.0e-5",
                                            "0.0001",
                                            "12345678901234567.0",
                                            "'hello world'",
                                            "'\\x{65e5}\\x{672c}'",
                                            "''",
                                            "\"\"",
                                            "\"abc\"",
                                            "[256, 1000]",
                                            "[a | b]",
                                            "[1, 2 | <<3>>]",
                                            "<<>>",
                                            "<<\"bin\">>",
                                            "<<1, 2, 3:4>>",
                                            "<<1:1>>",
                                            "#{}",
                                            "#{a => 1, 1 => a, 1.0 => b, <<\"k\">> => [#{}]}",
                                            "{}",
                                            "{a, {b, {c, {d, [e]}}}}",
                                            "fun lists:map/2",
                                            "[\"nested\", [\"deep\"]]",
                                            "$a",
                                            "16#FFFFFFFFFFFFFFFFFFFF",
                                            "[{k, v}, {k2, 1.5e-7}]",
                                            "'\\n'",
                                            "'it\\'s'",
                                            "\"\\e\\t\"",
                                            "[-1, -256, -300]",
                                            "#{[1] => {}, {} => []}"};
    std::vector<term> terms;
    for (const auto& t : texts)
        terms.push_back(term::parse(t));
    terms.push_back(term::list_from(std::vector<term>(70000, term(1)))); // beyond STRING_EXT
    terms.push_back(term::list_from(std::vector<term>(65535, term(120))));
    terms.push_back(term::list_from(std::vector<term>(65536, term(121))));
    terms.push_back(term::tuple_from(std::vector<term>(300, term("x"_a))));
    std::vector<term> maps_big;
    std::vector<std::pair<term, term>> kv;
    for (int i = 0; i < 40; ++i)
        kv.emplace_back(term(i), term(i * i));
    terms.push_back(term::map_from(kv));

    auto dir = std::filesystem::temp_directory_path() /
               ("erlcpp_etf_" + std::to_string(std::rand()) + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    {
        std::ofstream in(dir / "in.txt");
        for (const auto& t : terms)
            in << hex(etf::encode(t)) << '\t' << t.to_string() << '\n';
        std::ofstream script(dir / "check.escript");
        script << R"(
main([In, Out]) ->
    {ok, Data} = file:read_file(In),
    Lines = [L || L <- binary:split(Data, <<"\n">>, [global]), L =/= <<>>],
    Res = [check(L) || L <- Lines],
    ok = file:write_file(Out, Res).
check(Line) ->
    [Hex, Text] = binary:split(Line, <<"\t">>),
    Ours = binary_to_term(binary:decode_hex(Hex)),
    {ok, Toks, _} = erl_scan:string(unicode:characters_to_list(Text) ++ "."),
    {ok, Parsed} = erl_parse:parse_term(Toks),
    Status = case Ours =:= Parsed of true -> <<"ok">>; false -> <<"mismatch">> end,
    [Status, $\t, binary:encode_hex(term_to_binary(Parsed, [{minor_version, 2}])), $\n].
)";
    }
    std::string cmd = "escript " + (dir / "check.escript").string() + " " +
                      (dir / "in.txt").string() + " " + (dir / "out.txt").string() + " 2>&1";
    int rc = std::system(cmd.c_str());
    REQUIRE(rc == 0);
    std::ifstream out(dir / "out.txt");
    std::string line;
    std::size_t i = 0;
    while (std::getline(out, line)) {
        REQUIRE(i < terms.size());
        CAPTURE(i, terms[i].to_string().substr(0, 200));
        auto tab = line.find('\t');
        // Erlang read our bytes and our text as the same term...
        CHECK(line.substr(0, tab) == "ok");
        // ...and its bytes decode to our term, identical to ours where OTP's order is ours.
        bytes theirs = unhex(std::string_view(line).substr(tab + 1));
        CHECK(etf::decode(theirs) == terms[i]);
        if (!(terms[i].is_map() && terms[i].size() > 32))
            CHECK(hex(theirs) == hex(etf::encode(terms[i])));
        ++i;
    }
    CHECK(i == terms.size());
    std::filesystem::remove_all(dir);
}

TEST_CASE("the decoder's atom cache keeps to the atom bound and to the exact bytes",
          "[etf][atoms]") {
    // Names of every length around the cache's word boundaries (8, 16, 32 bytes), each at the
    // very end of the input (fewer than 16 bytes left to read) and inside a tuple.
    for (std::size_t len = 0; len <= 40; ++len) {
        std::string name;
        for (std::size_t i = 0; i < len; ++i)
            name.push_back(char('a' + (i * 7 + len) % 26));
        term a = term::make_atom(name);
        term t = erl::tuple(a, 1, a);
        for (int pass = 0; pass < 2; ++pass) { // the second pass hits the cache
            CHECK(etf::decode(etf::encode(a)) == a);
            CHECK(etf::decode(etf::encode(t)) == t);
        }
        // A name that differs only in its last byte is another atom.
        if (len > 0) {
            std::string other = name;
            other.back() = other.back() == 'z' ? 'y' : 'z';
            CHECK(etf::decode(etf::encode(term::make_atom(other))).atom_name() == other);
        }
    }
    // The same ASCII bytes under the Latin-1 tags are the same atom; non-ASCII Latin-1 bytes
    // are not the UTF-8 ones.
    CHECK(etf::decode(unhex("83730568656C6C6F")) == term("hello"_a));
    CHECK(etf::decode(unhex("8364000568656C6C6F")) == term("hello"_a));
    CHECK(etf::decode(unhex("837302C3A9")).atom_name() == "Ã©");
    CHECK(etf::decode(unhex("837702C3A9")).atom_name() == "é");
    CHECK(etf::decode(unhex("837302C3A9")).atom_name() == "Ã©");

    // Past the bound, a name the cache holds still comes out as atom text, and nothing is
    // interned; below it again, the interned atom.
    term cached = etf::decode(etf::encode(erl::tuple("cached_atom_for_bound"_a)));
    etf::decode_options none;
    none.atom_table_limit = 0;
    std::size_t before = erl::atom::table_size();
    term text = etf::decode(etf::encode(erl::tuple("cached_atom_for_bound"_a)), none);
    CHECK(erl::detail::term_access::tag(text[0]) == erl::detail::term_tag::atom_text);
    CHECK(text == cached);
    term fresh = etf::decode(bytes{131, 119, 9, 'n', 'o', 't', '_', 'i', 'n', '_', 'i', 't'}, none);
    CHECK(erl::detail::term_access::tag(fresh) == erl::detail::term_tag::atom_text);
    CHECK(erl::atom::table_size() == before);
    CHECK(erl::detail::term_access::tag(etf::decode(etf::encode(cached))[0]) ==
          erl::detail::term_tag::atom);

    // More names than the cache has entries: every one still decodes to itself.
    std::vector<term> many;
    for (int i = 0; i < 3000; ++i)
        many.push_back(term::make_atom("cache_churn_" + std::to_string(i)));
    term l = term::list_from(many);
    for (int pass = 0; pass < 2; ++pass)
        CHECK(etf::decode(etf::encode(l)) == l);
}

TEST_CASE("pids ports references and funs are read with their atoms", "[etf][hardening]") {
    // An export fun's arity as INTEGER_EXT is accepted; module and function must be atoms;
    // a pid's node must be an atom even when it is a container (nothing is left half-built).
    CHECK(etf::decode(unhex("8371"
                            "770161"
                            "770162"
                            "6200000002")) == term::export_fun("a"_a, "b"_a, 2));
    CHECK(error_offset(unhex("8368028371"
                             "6101"
                             "770162"
                             "6102")) == 3);
    CHECK(error_offset(unhex("8371"
                             "770161"
                             "6A"
                             "6102")) == 1);
    CHECK(error_offset(unhex("8368026A8358"
                             "680177016E"
                             "00000001000000020000000003")) == 4);
    // Identifiers inside containers, in both memory modes, and their truncations.
    std::uint32_t w[] = {7, 8, 9};
    term t =
        erl::tuple(term::pid("n@h"_a, 1, 2, 3), erl::list(term::port("n@h"_a, 1ull << 40, 5)),
                   erl::map{{term::reference("n@h"_a, 6, w), term::export_fun("m"_a, "f"_a, 0)}});
    auto b = etf::encode(t);
    CHECK(etf::decode(b) == t);
    auto previous = erl::detail::set_decode_arena_limit(0);
    CHECK(etf::decode(b) == t);
    for (std::size_t n = 1; n < b.size(); ++n)
        CHECK(error_offset(bytes(b.begin(), b.begin() + std::ptrdiff_t(n))) <= n);
    erl::detail::set_decode_arena_limit(previous);
}

TEST_CASE("nesting past the depth limit fails cleanly in either memory mode", "[etf][hardening]") {
    // The container that is one level too deep already hangs in its parent when the limit
    // trips: found by the fuzzer (640 nested 1-tuples ending in a truncated atom).
    for (int mode = 0; mode < 2; ++mode) {
        auto previous = erl::detail::set_decode_arena_limit(mode == 0 ? std::size_t(256) << 10 : 0);
        for (const char* tuple : {"6801", "6900000001", "6C00000001", "7400000001"}) {
            bytes b = unhex("83");
            for (int i = 0; i < 640; ++i) {
                bytes level = unhex(tuple);
                b.insert(b.end(), level.begin(), level.end());
            }
            try {
                (void)etf::decode(b, {.max_depth = 100});
                FAIL("decoded " << tuple);
            } catch (const erl::etf_error& e) {
                CHECK(std::string(e.what()).find("nesting deeper than 100") != std::string::npos);
            }
        }
        erl::detail::set_decode_arena_limit(previous);
    }
}

TEST_CASE("mutated messages never crash the decoder in either memory mode", "[etf][hardening]") {
    std::vector<bytes> seeds = {etf::encode(zoo())};
    for (const char* text :
         {"{'$gen_call', {a, b}, {put, <<\"k\">>, #{x => [1, 2.5, <<\"v\">>], y => {}}}}",
          "[{a, 1}, {b, \"str\"}, [c | d], #{1 => 2}]", "{user, 1000, <<\"alice\">>, [support]}"})
        seeds.push_back(etf::encode(term::parse(text)));
    std::uint32_t rng = 12345;
    auto next = [&rng] {
        rng = rng * 1664525u + 1013904223u;
        return rng >> 8;
    };
    for (int mode = 0; mode < 2; ++mode) {
        auto previous = erl::detail::set_decode_arena_limit(mode == 0 ? std::size_t(256) << 10 : 0);
        for (const auto& seed : seeds) {
            for (int round = 0; round < 400; ++round) {
                bytes b = seed;
                for (int k = 0, flips = 1 + int(next() % 4); k < flips; ++k)
                    b[1 + next() % (b.size() - 1)] = std::uint8_t(next());
                try {
                    term t = etf::decode(b);
                    (void)t.hash();
                } catch (const erl::etf_error& e) {
                    CHECK(e.offset() <= b.size());
                }
            }
        }
        erl::detail::set_decode_arena_limit(previous);
    }
}

TEST_CASE("sub-terms outlive their message while its memory is reused", "[etf][arena]") {
    // Parts kept from decoded messages stay intact while later decodes on this thread and
    // others reuse freed arena chunks; messages freed on a thread that then ends are fine.
    std::vector<term> kept;
    for (int i = 0; i < 200; ++i) {
        term msg = etf::decode(etf::encode(
            erl::tuple(i, term(std::string(std::size_t(i) * 13, 'q')), erl::list("k"_a, i))));
        if (i % 3 == 0) kept.push_back(msg[1]);
    }
    for (std::size_t j = 0; j < kept.size(); ++j)
        CHECK(kept[j].as_string_view() == std::string(j * 3 * 13, 'q'));
    term across = etf::decode(etf::encode(erl::tuple("x"_a, term("shared"))));
    std::thread([m = std::move(across)]() mutable {
        term part = m[1];
        m = term(); // part holds the arena now
        for (int i = 0; i < 50; ++i)
            (void)etf::decode(etf::encode(erl::tuple(i, term("other"))));
        CHECK(part.as_string_view() == "shared");
    }).join(); // the arena was freed there, its chunk kept, then given back at thread end
    kept.clear();
    CHECK(etf::decode(etf::encode(erl::tuple(1, term("after")))) == erl::tuple(1, term("after")));
}
