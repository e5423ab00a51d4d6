#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
namespace tcp = erl::tcp;

namespace {

// An echo server process: accepts `n` connections (or until closed), one process each.
void echo_acceptor(tcp::listener l, int n) {
    for (int i = 0; i < n; ++i) {
        tcp::socket s = l.accept(10s);
        erl::pid worker = erl::spawn([s] {
            try {
                for (;;)
                    s.write(s.read());
            } catch (const erl::io_error& e) {
                if (!e.is_closed()) throw;
            }
        });
        s.controlling_process(worker);
    }
}

std::size_t open_fds() {
    std::size_t n = 0;
    for (int fd = 0; fd < 65536; ++fd)
        if (::fcntl(fd, F_GETFD) != -1) ++n;
    return n;
}

} // namespace

TEST_CASE("a loopback client and server echo bytes", "[tcp]") {
    erl::runtime rt({.schedulers = 2});
    std::string got;
    std::string peer_text;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        std::uint16_t port = l.local().port();
        CHECK(port != 0);
        erl::spawn([l] { echo_acceptor(l, 1); });
        tcp::socket c = tcp::connect("127.0.0.1", port, 5s);
        c.write("hello, ");
        c.write("world");
        got = c.read(12, 5s);
        peer_text = fmt::format("{}", c.peer());
        CHECK(c.local().address() == "127.0.0.1");
        c.close();
        l.close();
    });
    CHECK(got == "hello, world");
    CHECK(peer_text.rfind("127.0.0.1:", 0) == 0);
}

TEST_CASE("IPv6 loopback works", "[tcp]") {
    erl::runtime rt({.schedulers = 1});
    std::string got;
    bool v6 = false;
    rt.run([&] {
        tcp::listener l;
        try {
            l = tcp::listen("::1", 0);
        } catch (const erl::io_error& e) {
            WARN("no IPv6 loopback here: " << e.what());
            return;
        }
        erl::spawn([l] { echo_acceptor(l, 1); });
        tcp::socket c = tcp::connect("::1", l.local().port(), 5s);
        v6 = c.peer().is_v6();
        c.write("six");
        got = c.read(3, 5s);
        CHECK(fmt::format("{}", c.peer()).rfind("[::1]:", 0) == 0);
    });
    if (v6) CHECK(got == "six");
}

TEST_CASE("names resolve and endpoints parse", "[tcp]") {
    erl::runtime rt({.schedulers = 1});
    std::string got;
    rt.run([&] {
        tcp::listener l = tcp::listen("localhost", 0);
        erl::spawn([l] { echo_acceptor(l, 1); });
        tcp::socket c = tcp::connect("localhost", l.local().port(), 5s);
        c.write("x");
        got = c.read(1, 5s);
    });
    CHECK(got == "x");
    CHECK(tcp::endpoint("10.1.2.3", 80).address() == "10.1.2.3");
    CHECK(fmt::format("{}", tcp::endpoint("::1", 8080)) == "[::1]:8080");
    CHECK_THROWS_AS(tcp::endpoint("not an address", 1), erl::io_error);
}

TEST_CASE("every tcp call honours its timeout", "[tcp][timeout]") {
    erl::runtime rt({.schedulers = 1});
    std::vector<std::string> reasons;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        auto t0 = std::chrono::steady_clock::now();
        try {
            l.accept(50ms);
        } catch (const erl::io_error& e) {
            reasons.push_back(e.reason().str());
        }
        CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
        tcp::socket c = tcp::connect("127.0.0.1", l.local().port(), 5s);
        tcp::socket s = l.accept(5s);
        try {
            c.read(0, 30ms);
        } catch (const erl::io_error& e) {
            reasons.push_back(e.reason().str());
        }
        // An exact read that times out keeps what arrived for the next read.
        s.write("abc");
        try {
            c.read(10, 100ms);
        } catch (const erl::io_error& e) {
            reasons.push_back(e.reason().str());
        }
        s.write("defghij");
        CHECK(c.read(10, 5s) == "abcdefghij");
        // A write that cannot finish (nobody reads) times out.
        std::string big(1 << 20, 'x');
        try {
            for (int i = 0; i < 64; ++i)
                c.write(big, 100ms);
        } catch (const erl::io_error& e) {
            reasons.push_back(e.reason().str());
        }
    });
    CHECK(reasons == std::vector<std::string>{"timeout", "timeout", "timeout", "timeout"});
}

TEST_CASE("connect timeout and refusal are reported", "[tcp][timeout]") {
    erl::runtime rt({.schedulers = 1});
    std::string refused;
    std::string timed_out;
    rt.run([&] {
        // A port nobody listens on.
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        std::uint16_t port = l.local().port();
        l.close();
        try {
            tcp::connect("127.0.0.1", port, 5s);
        } catch (const erl::io_error& e) {
            refused = e.reason().str();
        }
        // A listener whose accept queue is full drops further SYNs: connect must time out.
        tcp::listener full = tcp::listen("127.0.0.1", 0, {.backlog = 1});
        std::vector<tcp::socket> queued;
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 16 && timed_out.empty(); ++i) {
            try {
                queued.push_back(tcp::connect("127.0.0.1", full.local().port(), 200ms));
            } catch (const erl::io_error& e) {
                timed_out = e.reason().str();
            }
        }
        CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    });
    CHECK(timed_out == "timeout");
}

TEST_CASE("a peer close and a peer reset are reported", "[tcp]") {
    erl::runtime rt({.schedulers = 1});
    std::string closed, reset;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        tcp::socket c = tcp::connect("127.0.0.1", l.local().port(), 5s);
        tcp::socket s = l.accept(5s);
        s.write("last");
        s.close();
        CHECK(c.read(4, 5s) == "last");
        try {
            c.read(0, 5s);
        } catch (const erl::io_error& e) {
            closed = e.reason().str();
        }
        // Reset: a plain socket closed with SO_LINGER 0 sends RST.
        int raw = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(l.local().port());
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(raw, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
        tcp::socket s2 = l.accept(5s);
        struct linger lg {
            1, 0
        };
        ::setsockopt(raw, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::close(raw);
        try {
            s2.read(0, 5s);
        } catch (const erl::io_error& e) {
            reset = e.reason().str();
        }
    });
    CHECK(closed == "closed");
    CHECK(reset == "econnreset");
}

TEST_CASE("a socket closes when its owner ends", "[tcp][owner]") {
    erl::runtime rt({.schedulers = 2});
    std::size_t before = open_fds();
    std::size_t during = 0, after = 0;
    std::string client_saw;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        std::uint16_t port = l.local().port();
        erl::pid me = erl::self();
        erl::pid owner = erl::spawn([l, me] {
            std::vector<tcp::socket> mine;
            for (int i = 0; i < 10; ++i)
                mine.push_back(l.accept(5s));
            erl::send(me, 1);
            erl::receive([](int) {}); // killed while holding the sockets
        });
        std::vector<tcp::socket> clients;
        for (int i = 0; i < 10; ++i)
            clients.push_back(tcp::connect("127.0.0.1", port, 5s));
        erl::receive([](int) {});
        during = open_fds();
        erl::exit(owner, erl::exit_reason::kill());
        try {
            clients[0].read(0, 5s);
        } catch (const erl::io_error& e) {
            client_saw = e.reason().str();
        }
        for (auto& c : clients)
            c.close();
        l.close();
        erl::receive(erl::after(10ms));
        after = open_fds();
    });
    CHECK(during >= before + 21);
    CHECK(client_saw == "closed");
    CHECK(after <= before + 1);
}

TEST_CASE("a crashing connection process loses only its own socket", "[tcp][owner]") {
    erl::runtime rt({.schedulers = 2});
    std::string survivor;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        erl::spawn([l] {
            for (int i = 0; i < 2; ++i) {
                tcp::socket s = l.accept(5s);
                erl::pid w = erl::spawn([s] {
                    std::string line = s.read(0, 5s);
                    if (line == "crash") throw std::runtime_error("asked to crash");
                    s.write("ok:" + line);
                });
                s.controlling_process(w);
            }
        });
        tcp::socket a = tcp::connect("127.0.0.1", l.local().port(), 5s);
        tcp::socket b = tcp::connect("127.0.0.1", l.local().port(), 5s);
        a.write("crash");
        CHECK_THROWS_AS(a.read(0, 5s), erl::io_error);
        b.write("fine");
        survivor = b.read(7, 5s);
    });
    CHECK(survivor == "ok:fine");
}

TEST_CASE("a process killed while blocked in accept read or connect unwinds at once",
          "[tcp][kill][race]") {
    erl::runtime rt({.schedulers = 2});
    int downs = 0;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        tcp::socket c = tcp::connect("127.0.0.1", l.local().port(), 5s);
        tcp::socket s = l.accept(5s);
        std::vector<erl::pid> blocked;
        blocked.push_back(erl::spawn([l] { l.accept(); }));
        blocked.push_back(erl::spawn([s] { s.read(); }));
        blocked.push_back(erl::spawn([s] { s.read(100); }));
        // A connect that cannot complete: the accept queue of `full` is full.
        tcp::listener full = tcp::listen("127.0.0.1", 0, {.backlog = 1});
        std::uint16_t full_port = full.local().port();
        std::vector<tcp::socket> queued;
        for (int i = 0; i < 2; ++i)
            queued.push_back(tcp::connect("127.0.0.1", full_port, 5s));
        blocked.push_back(
            erl::spawn([full_port] { tcp::connect("127.0.0.1", full_port, erl::infinity); }));
        erl::receive(erl::after(50ms));
        for (auto& p : blocked) {
            erl::monitor(p);
            erl::exit(p, erl::exit_reason::kill());
        }
        auto t0 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < blocked.size(); ++i)
            erl::receive([&](const erl::down_msg&) { ++downs; }, erl::after(5s));
        CHECK(std::chrono::steady_clock::now() - t0 < 2s);
        // The socket others waited on still works.
        c.write("still here");
        CHECK(s.read(10, 5s) == "still here");
    });
    CHECK(downs == 4);
}

TEST_CASE("active once delivers one message then goes passive", "[tcp][active]") {
    erl::runtime rt({.schedulers = 1});
    std::vector<std::string> seen;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        tcp::socket c = tcp::connect("127.0.0.1", l.local().port(), 5s);
        tcp::socket s = l.accept(5s);
        s.set_active(tcp::active::once());
        c.write("one");
        erl::receive([&](erl::tcp_data d) {
            CHECK(d.socket == s);
            seen.push_back(d.data);
        });
        c.write("two");
        erl::receive([&](erl::tcp_data d) { seen.push_back("unexpected " + d.data); },
                     erl::after(50ms));
        // Passive now: a read gets it; then active again sees the rest.
        seen.push_back(s.read(3, 5s));
        c.write("three");
        erl::receive(erl::after(20ms));
        s.set_active(tcp::active::once());
        erl::receive([&](erl::tcp_data d) { seen.push_back(d.data); }, erl::after(5s));
    });
    CHECK(seen == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("active mode reports data close and passive as messages", "[tcp][active]") {
    erl::runtime rt({.schedulers = 2});
    std::string all;
    int passives = 0;
    bool closed = false;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0, {.socket = {.mode = tcp::active::n(3)}});
        erl::pid me = erl::self();
        erl::spawn([l, me] {
            tcp::socket c = tcp::connect("127.0.0.1", l.local().port(), 5s);
            for (int i = 0; i < 6; ++i) {
                c.write(std::to_string(i));
                erl::receive(erl::after(5ms)); // separate segments
            }
            erl::send(me, std::string("sent"));
            erl::receive([](int) {}, erl::after(100ms));
        });
        tcp::socket s = l.accept(5s);
        bool done = false;
        while (!done) {
            erl::receive([&](erl::tcp_data d) { all += d.data; },
                         [&](erl::tcp_passive p) {
                             CHECK(p.socket == s);
                             ++passives;
                             s.set_active(tcp::active::n(100));
                         },
                         [&](erl::tcp_closed c) {
                             CHECK(c.socket == s);
                             closed = true;
                             done = true;
                         },
                         [](const std::string&) {}, erl::after(5s, [&] { done = true; }));
        }
        CHECK_FALSE(s.is_open()); // closed with the stream, as gen_tcp's exit_on_close
    });
    CHECK(all == "012345");
    CHECK(passives >= 1);
    CHECK(closed);
}

TEST_CASE("controlling_process hands a socket over", "[tcp][owner]") {
    erl::runtime rt({.schedulers = 2});
    std::string got;
    bool not_owner = false;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        tcp::socket c = tcp::connect("127.0.0.1", l.local().port(), 5s);
        tcp::socket s = l.accept(5s);
        erl::pid me = erl::self();
        erl::pid other = erl::spawn([me] {
            erl::receive([&](tcp::socket sock) {
                sock.set_active(tcp::active::once());
                erl::receive([&](erl::tcp_data d) { erl::send(me, d.data); });
            });
        });
        s.controlling_process(other);
        CHECK(s.owner() == other);
        try {
            s.controlling_process(me);
        } catch (const erl::io_error& e) {
            not_owner = e.reason() == erl::atom("not_owner");
        }
        erl::send(other, s);
        c.write("moved");
        got = erl::receive([](std::string v) { return v; },
                           erl::after(5s, [] { return std::string("nothing"); }));
        // The new owner ended: the socket went with it.
        erl::receive(erl::after(20ms));
        CHECK_FALSE(s.is_open());
        // Handing to a dead process closes the socket.
        tcp::socket c2 = tcp::connect("127.0.0.1", l.local().port(), 5s);
        c2.controlling_process(other);
        CHECK_FALSE(c2.is_open());
    });
    CHECK(got == "moved");
    CHECK(not_owner);
}

TEST_CASE("concurrent writers never interleave their writes", "[tcp][race]") {
    erl::runtime rt({.schedulers = 2});
    bool intact = true;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        tcp::socket c = tcp::connect("127.0.0.1", l.local().port(), 5s);
        tcp::socket s = l.accept(5s);
        const std::size_t chunk = 256 * 1024;
        for (char ch : std::string("abcd"))
            erl::spawn([c, ch] { c.write(std::string(chunk, ch), 10s); });
        for (int i = 0; i < 4; ++i) {
            std::string block = s.read(chunk, 10s);
            for (char x : block)
                if (x != block[0]) intact = false;
        }
    });
    CHECK(intact);
}

TEST_CASE("a thousand concurrent connections each echo many messages", "[tcp][stress]") {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < 4096 && lim.rlim_max >= 4096) {
        lim.rlim_cur = 4096;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    const int conns = lim.rlim_cur >= 2200 ? 1000 : int(lim.rlim_cur / 3);
    const int rounds = 20;
    erl::runtime rt({.schedulers = 2});
    std::atomic<int> ok{0};
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0, {.backlog = 4096});
        std::uint16_t port = l.local().port();
        erl::spawn([l, conns] { echo_acceptor(l, conns); });
        std::vector<erl::pid> clients;
        for (int i = 0; i < conns; ++i) {
            clients.push_back(erl::spawn([port, i, &ok] {
                tcp::socket c = tcp::connect("127.0.0.1", port, 30s);
                for (int r = 0; r < rounds; ++r) {
                    std::string msg = fmt::format("{}:{};", i, r);
                    c.write(msg, 30s);
                    if (c.read(msg.size(), 30s) != msg) return;
                }
                ok.fetch_add(1);
            }));
        }
        // The listener belongs to this process: it must outlive the clients.
        for (auto& c : clients)
            erl::monitor(c);
        for (std::size_t i = 0; i < clients.size(); ++i)
            erl::receive([](const erl::down_msg&) {});
    });
    CHECK(ok.load() == conns);
}

TEST_CASE("sockets print like Erlang ports", "[tcp]") {
    erl::runtime rt({.schedulers = 1});
    std::string text;
    rt.run([&] {
        tcp::listener l = tcp::listen("127.0.0.1", 0);
        text = fmt::format("{}", l);
    });
    CHECK(text.rfind("#Port<0.", 0) == 0);
}

TEST_CASE("tcp calls outside a process are refused", "[tcp]") {
    CHECK_THROWS_AS(tcp::listen("127.0.0.1", 0), erl::not_in_process);
}

namespace {
void ignore_signal(int) {}
} // namespace

TEST_CASE("signals that interrupt system calls do not disturb sockets", "[tcp][eintr]") {
    // SIGUSR1 without SA_RESTART: epoll waits, accept, connect, reads and writes on every
    // thread see EINTR now and then and must carry on.
    struct sigaction sa {};
    struct sigaction old {};
    sa.sa_handler = ignore_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    ::sigaction(SIGUSR1, &sa, &old);
    std::atomic<bool> firing{true};
    std::thread storm([&] {
        while (firing.load()) {
            ::kill(::getpid(), SIGUSR1);
            std::this_thread::sleep_for(100us);
        }
    });
    std::atomic<int> ok{0};
    {
        erl::runtime rt({.schedulers = 2});
        rt.run([&] {
            tcp::listener l = tcp::listen("127.0.0.1", 0);
            std::uint16_t port = l.local().port();
            erl::spawn([l] { echo_acceptor(l, 50); });
            std::vector<erl::pid> clients;
            for (int i = 0; i < 50; ++i) {
                clients.push_back(erl::spawn([port, &ok] {
                    tcp::socket c = tcp::connect("127.0.0.1", port, 30s);
                    for (int r = 0; r < 100; ++r) {
                        std::string msg(1 + r * 97 % 3000, char('a' + r % 26));
                        c.write(msg, 30s);
                        if (c.read(msg.size(), 30s) != msg) return;
                        if (r % 10 == 0) erl::receive(erl::after(100us));
                    }
                    ok.fetch_add(1);
                }));
            }
            for (auto& c : clients)
                erl::monitor(c);
            for (std::size_t i = 0; i < clients.size(); ++i)
                erl::receive([](const erl::down_msg&) {});
        });
    }
    firing = false;
    storm.join();
    ::sigaction(SIGUSR1, &old, nullptr);
    CHECK(ok.load() == 50);
}
