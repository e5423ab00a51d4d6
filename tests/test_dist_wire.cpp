// The distribution protocol's building blocks without sockets: MD5 and the handshake digest,
// the flag set, node names, the cookie file, the EPMD codec.
#include <catch2/catch.hpp>

#include "dist/cookie.hpp"
#include "dist/epmd.hpp"
#include "dist/flags.hpp"
#include "dist/md5.hpp"
#include "dist/node_name.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

namespace dist = erl::detail::dist;
namespace epmd = erl::detail::dist::epmd;
using bytes = std::vector<std::uint8_t>;

namespace {

bytes b(std::initializer_list<int> v) {
    bytes out;
    for (int x : v)
        out.push_back(std::uint8_t(x));
    return out;
}
bytes text_bytes(std::string_view s) {
    return bytes(s.begin(), s.end());
}
bytes cat(bytes a, const bytes& c) {
    a.insert(a.end(), c.begin(), c.end());
    return a;
}

// A scratch directory removed at the end of the test.
struct scratch_dir {
    std::filesystem::path path;
    scratch_dir() {
        char tmpl[] = "/tmp/erlcpp_dist_XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~scratch_dir() { std::filesystem::remove_all(path); }
    std::string write(const std::string& name, std::string_view content, mode_t mode) {
        auto p = path / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << content;
        ::chmod(p.c_str(), mode);
        return p.string();
    }
};

// Sets an environment variable for the scope of the object.
struct env_var {
    std::string name;
    std::optional<std::string> old;
    env_var(std::string n, const std::optional<std::string>& value) : name(std::move(n)) {
        if (const char* v = std::getenv(name.c_str())) old = v;
        if (value)
            ::setenv(name.c_str(), value->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
    ~env_var() {
        if (old)
            ::setenv(name.c_str(), old->c_str(), 1);
        else
            ::unsetenv(name.c_str());
    }
};

} // namespace

TEST_CASE("MD5 gives the RFC 1321 test suite digests", "[dist][md5]") {
    CHECK(dist::to_hex(dist::md5_of("")) == "d41d8cd98f00b204e9800998ecf8427e");
    CHECK(dist::to_hex(dist::md5_of("a")) == "0cc175b9c0f1b6a831c399e269772661");
    CHECK(dist::to_hex(dist::md5_of("abc")) == "900150983cd24fb0d6963f7d28e17f72");
    CHECK(dist::to_hex(dist::md5_of("message digest")) == "f96b697d7cb7938d525a2f31aaf161d0");
    CHECK(dist::to_hex(dist::md5_of("abcdefghijklmnopqrstuvwxyz")) ==
          "c3fcd3d76192e4007dfb496cca67e13b");
    CHECK(dist::to_hex(
              dist::md5_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")) ==
          "d174ab98d277d9f5a5611c2c9f419d9f");
    CHECK(dist::to_hex(dist::md5_of("1234567890123456789012345678901234567890123456789012345678"
                                    "9012345678901234567890")) ==
          "57edf4a22be3c955ac49da2e2107b67a");
}

TEST_CASE("MD5 fed in pieces equals MD5 in one go", "[dist][md5]") {
    std::string text;
    for (int i = 0; i < 1000; ++i)
        text.push_back(char('a' + i % 26));
    // Every split point around the 64-byte block and the 56-byte padding boundaries.
    for (std::size_t len : {55u, 56u, 57u, 63u, 64u, 65u, 119u, 120u, 128u, 1000u}) {
        std::string_view whole(text.data(), len);
        auto want = dist::md5_of(whole);
        for (std::size_t cut = 0; cut <= len; cut += 7) {
            dist::md5 m;
            m.update(whole.substr(0, cut));
            m.update(whole.substr(cut));
            CHECK(m.digest() == want);
        }
    }
}

TEST_CASE("the handshake digest is md5 of cookie and decimal challenge", "[dist][md5]") {
    // Computed by erl (erlang:md5("secret1234567890")) and by Python.
    CHECK(dist::to_hex(dist::handshake_digest("secret", 1234567890)) ==
          "e0fcfc1ba511fc6fe6ee357c9addb932");
    CHECK(dist::handshake_digest("c", 0) == dist::md5_of("c0"));
    CHECK(dist::handshake_digest("c", 4294967295u) == dist::md5_of("c4294967295"));
}

TEST_CASE("erlcpp's flag set satisfies the OTP 25 and OTP 26 mandatory sets", "[dist][flags]") {
    using namespace dist::dflag;
    CHECK((erlcpp_default & mandatory_25) == mandatory_25);
    CHECK((erlcpp_default & mandatory_26) == mandatory_26);
    CHECK_FALSE(uses_dist_header(erlcpp_default));
    CHECK_FALSE(uses_dist_header(erlcpp_default & 0xd07df7fbdull)); // with what OTP 25.2 offers
    CHECK((erlcpp_default & (atom_cache | hidden_atom_cache | name_me | published)) == 0);
    CHECK(dist::expand_peer_flags(mandatory_25_digest) == (mandatory_25 | mandatory_25_digest));
    CHECK(dist::expand_peer_flags(published) == published);
    CHECK(dist::flags_to_string(published | alias) == "PUBLISHED|ALIAS");
    CHECK(dist::flags_to_string(0) == "0");
    CHECK(dist::flags_to_string(0x8000) == "0x8000");
}

TEST_CASE("node names follow the short and long name rules", "[dist][names]") {
    using dist::name_mode;
    auto n = dist::parse_node_name("a@127.0.0.1", name_mode::long_names);
    CHECK(n.alive == "a");
    CHECK(n.host == "127.0.0.1");
    CHECK(n.full() == "a@127.0.0.1");
    CHECK(dist::parse_node_name("x@host", name_mode::short_names).host == "host");
    CHECK(dist::parse_node_name("x@::1", name_mode::long_names).host == "::1");
    CHECK_THROWS_AS(dist::parse_node_name("x@127.0.0.1", name_mode::short_names),
                    std::invalid_argument);
    CHECK_THROWS_AS(dist::parse_node_name("x@host", name_mode::long_names), std::invalid_argument);
    for (const char* bad : {"nohost", "@h", "a@", "a@b@c", "", "a@h\n"})
        CHECK_THROWS_AS(dist::parse_node_name(bad, name_mode::short_names), std::invalid_argument);
    CHECK_THROWS_AS(
        dist::parse_node_name(std::string(250, 'a') + "@hhhhhh", name_mode::short_names),
        std::invalid_argument);
    CHECK(dist::is_node_name("a@b"));
    CHECK_FALSE(dist::is_node_name("a@b@c"));
    CHECK_FALSE(dist::is_node_name("ab"));
}

TEST_CASE("the cookie file is read with erl's rules", "[dist][cookie]") {
    scratch_dir dir;
    CHECK(dist::read_cookie_file(dir.write("ok", "SECRETCOOKIE\n", 0400)) == "SECRETCOOKIE");
    CHECK(dist::read_cookie_file(dir.write("crlf", "abc def\r\n  \n", 0600)) == "abc def");
    CHECK(dist::read_cookie_file(dir.write("bare", "x", 0400)) == "x");
    CHECK_THROWS_WITH(dist::read_cookie_file(dir.write("open", "abc\n", 0644)),
                      Catch::Contains("accessible by owner only"));
    CHECK_THROWS_WITH(dist::read_cookie_file(dir.write("empty", "", 0400)),
                      Catch::Contains("too short"));
    CHECK_THROWS_WITH(dist::read_cookie_file(dir.write("nl", "\n", 0400)),
                      Catch::Contains("too short"));
    CHECK_THROWS_WITH(dist::read_cookie_file(dir.write("two", "abc\ndef\n", 0400)),
                      Catch::Contains("bad characters"));
    CHECK_THROWS_WITH(dist::read_cookie_file(dir.write("tab", "ab\tc", 0400)),
                      Catch::Contains("bad characters"));
    CHECK_THROWS_WITH(dist::read_cookie_file((dir.path / "missing").string()),
                      Catch::Contains("No such file"));
    std::filesystem::create_directory(dir.path / "adir");
    ::chmod((dir.path / "adir").c_str(), 0700);
    CHECK_THROWS_WITH(dist::read_cookie_file((dir.path / "adir").string()),
                      Catch::Contains("not a regular file"));
}

TEST_CASE("the cookie is found as erl finds it or refused clearly", "[dist][cookie]") {
    scratch_dir dir;
    env_var home("HOME", dir.path.string());
    env_var xdg("XDG_CONFIG_HOME", std::nullopt);
    CHECK(dist::find_cookie(std::string("given")) == "given");
    CHECK_THROWS_WITH(dist::find_cookie(std::nullopt), Catch::Contains("does not exist"));
    dir.write(".config/erlang/.erlang.cookie", "XDGCOOKIE\n", 0400);
    CHECK(dist::default_cookie_path() == (dir.path / ".config/erlang/.erlang.cookie").string());
    CHECK(dist::find_cookie(std::nullopt) == "XDGCOOKIE");
    dir.write(".erlang.cookie", "HOMECOOKIE\n", 0400); // $HOME's file comes first
    CHECK(dist::find_cookie(std::nullopt) == "HOMECOOKIE");
    env_var nohome("HOME", std::nullopt);
    CHECK_THROWS_WITH(dist::find_cookie(std::nullopt), Catch::Contains("HOME"));
}

TEST_CASE("ALIVE2_REQ is encoded as OTP 25 sends it", "[dist][epmd]") {
    epmd::alive2_request r;
    r.port = 0xaac7;
    r.name = "py";
    // Bytes OTP 25.2's erl_epmd sent for the same request (doc section 2.1).
    CHECK(epmd::encode_alive2_request(r) == b({0x00, 0x0f, 0x78, 0xaa, 0xc7, 0x4d, 0x00, 0x00, 0x06,
                                               0x00, 0x05, 0x00, 0x02, 0x70, 0x79, 0x00, 0x00}));
    r.name = "";
    CHECK_THROWS_AS(epmd::encode_alive2_request(r), std::invalid_argument);
    r.name = "a@b";
    CHECK_THROWS_AS(epmd::encode_alive2_request(r), std::invalid_argument);
    r.name = std::string(256, 'x');
    CHECK_THROWS_AS(epmd::encode_alive2_request(r), std::invalid_argument);
}

TEST_CASE("ALIVE2 replies decode in both forms and in pieces", "[dist][epmd]") {
    std::size_t used = 0;
    auto x = b({0x76, 0x00, 0x6b, 0x00, 0xd4, 0xed});
    for (std::size_t n = 0; n < x.size(); ++n)
        CHECK_FALSE(epmd::decode_alive2_response(dist::bytes_view(x.data(), n), used));
    auto r = epmd::decode_alive2_response(x, used);
    REQUIRE(r);
    CHECK(r->result == 0);
    CHECK(r->creation == 0x6b00d4edu);
    CHECK(r->extended);
    CHECK(used == 6);
    auto refused = epmd::decode_alive2_response(b({0x76, 0x01, 0, 0, 0, 0x63}), used);
    REQUIRE(refused);
    CHECK(refused->result == 1);
    auto old = epmd::decode_alive2_response(b({0x79, 0x00, 0x00, 0x02, 0xff}), used);
    REQUIRE(old);
    CHECK_FALSE(old->extended);
    CHECK(old->creation == 2);
    CHECK(used == 4);
    CHECK_THROWS_AS(epmd::decode_alive2_response(b({0x77, 0, 0, 0, 0, 0}), used),
                    dist::protocol_error);
}

TEST_CASE("PORT_PLEASE2 and PORT2_RESP", "[dist][epmd]") {
    CHECK(epmd::encode_port_please2_request("probe") == cat(b({0, 6, 122}), text_bytes("probe")));
    // What EPMD answered for "probe" on port 5555 (doc section 2.3).
    auto reply = cat(b({0x77, 0x00, 0x15, 0xb3, 0x48, 0x00, 0x00, 0x06, 0x00, 0x05, 0x00, 0x05}),
                     cat(text_bytes("probe"), b({0x00, 0x00})));
    std::size_t used = 0;
    for (std::size_t n = 0; n < reply.size(); ++n)
        CHECK_FALSE(epmd::decode_port2_response(dist::bytes_view(reply.data(), n), used));
    auto r = epmd::decode_port2_response(reply, used);
    REQUIRE(r);
    CHECK(r->result == 0);
    CHECK(r->port == 5555);
    CHECK(r->node_type == 72);
    CHECK(r->highest_version == 6);
    CHECK(r->lowest_version == 5);
    CHECK(r->name == "probe");
    CHECK(r->extra.empty());
    CHECK(r->speaks_version_6());
    CHECK(used == reply.size());
    auto none = epmd::decode_port2_response(b({0x77, 0x01}), used);
    REQUIRE(none);
    CHECK(none->result == 1);
    CHECK(used == 2);
    // Malformed: another tag, port 0, versions upside down, empty name.
    CHECK_THROWS_AS(epmd::decode_port2_response(b({0x76, 0x00}), used), dist::protocol_error);
    auto bad = reply;
    bad[2] = bad[3] = 0;
    CHECK_THROWS_AS(epmd::decode_port2_response(bad, used), dist::protocol_error);
    bad = reply;
    bad[9] = 7; // lowest version 7, above the highest (6)
    CHECK_THROWS_AS(epmd::decode_port2_response(bad, used), dist::protocol_error);
    bad = b({0x77, 0x00, 0x15, 0xb3, 0x48, 0x00, 0x00, 0x06, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00});
    CHECK_THROWS_AS(epmd::decode_port2_response(bad, used), dist::protocol_error);
    CHECK_THROWS_AS(epmd::encode_port_please2_request(""), std::invalid_argument);
}

TEST_CASE("NAMES request and reply", "[dist][epmd]") {
    CHECK(epmd::encode_names_request() == b({0x00, 0x01, 0x6e}));
    auto reply = cat(b({0x00, 0x00, 0x11, 0x11}),
                     text_bytes("name probe5 at port 5557\nname probe at port 5555\n"));
    auto r = epmd::decode_names_response(reply);
    CHECK(r.epmd_port == 4369);
    REQUIRE(r.nodes.size() == 2);
    CHECK(r.nodes[0] == epmd::names_response::entry{"probe5", 5557});
    CHECK(r.nodes[1] == epmd::names_response::entry{"probe", 5555});
    CHECK(epmd::decode_names_response(b({0, 0, 0x11, 0x11})).nodes.empty());
    for (const char* bad : {"name x at port 1", "name x at port 70000\n", "nome x at port 1\n",
                            "name  at port 1\n", "name x at port\n", "name x at port 1x\n"})
        CHECK_THROWS_AS(epmd::decode_names_response(cat(b({0, 0, 0x11, 0x11}), text_bytes(bad))),
                        dist::protocol_error);
    CHECK_THROWS_AS(epmd::decode_names_response(b({0, 0})), dist::protocol_error);
}

TEST_CASE("ERL_EPMD_PORT chooses the EPMD port", "[dist][epmd]") {
    {
        env_var v("ERL_EPMD_PORT", std::string("4400"));
        CHECK(epmd::port_from_environment() == 4400);
    }
    {
        env_var v("ERL_EPMD_PORT", std::string("junk"));
        CHECK(epmd::port_from_environment() == 4369);
    }
    env_var v("ERL_EPMD_PORT", std::nullopt);
    CHECK(epmd::port_from_environment() == 4369);
}
