// Test-only helpers for tests that need real Erlang: blocking loopback sockets with deadlines,
// child OS processes (killed with their process group at the end), a private epmd on a free
// port, and `erl` nodes started against it.
#pragma once

#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace dist_live {

using namespace std::chrono_literals;
using bytes = std::vector<std::uint8_t>;
using clock_type = std::chrono::steady_clock;

inline bool have_erlang() {
    static const bool yes = std::system("command -v erl >/dev/null 2>&1 && "
                                        "command -v epmd >/dev/null 2>&1") == 0;
    return yes;
}

// ---- sockets (blocking, with poll() deadlines) ----

class sock {
  public:
    sock() = default;
    explicit sock(int fd) : fd_(fd) {}
    sock(sock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    sock& operator=(sock&& o) noexcept {
        std::swap(fd_, o.fd_);
        return *this;
    }
    ~sock() {
        if (fd_ >= 0) ::close(fd_);
    }
    int fd() const { return fd_; }
    bool valid() const { return fd_ >= 0; }

    void send_all(const bytes& b) const {
        std::size_t done = 0;
        while (done < b.size()) {
            ssize_t n = ::send(fd_, b.data() + done, b.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            REQUIRE(n > 0);
            done += std::size_t(n);
        }
    }
    // Some bytes, or nothing: `closed` tells a closed connection from a timeout.
    bytes recv_some(std::chrono::milliseconds timeout, bool& closed) const {
        closed = false;
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, int(timeout.count())) <= 0) return {};
        bytes b(65536);
        ssize_t n = ::recv(fd_, b.data(), b.size(), 0);
        if (n <= 0) {
            closed = true;
            return {};
        }
        b.resize(std::size_t(n));
        return b;
    }

  private:
    int fd_ = -1;
};

inline sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

inline sock connect_to(std::uint16_t port) {
    sock s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto a = loopback(port);
    if (::connect(s.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return sock();
    int one = 1;
    ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

struct listener {
    sock s;
    std::uint16_t port = 0;
    listener() : s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        int one = 1;
        ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        auto a = loopback(0);
        REQUIRE(::bind(s.fd(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(s.fd(), 4) == 0);
        socklen_t len = sizeof a;
        ::getsockname(s.fd(), reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    sock accept(std::chrono::milliseconds timeout) const {
        pollfd p{s.fd(), POLLIN, 0};
        if (::poll(&p, 1, int(timeout.count())) <= 0) return sock();
        return sock(::accept4(s.fd(), nullptr, nullptr, SOCK_CLOEXEC));
    }
};

inline std::uint16_t free_port() {
    listener l;
    return l.port; // closed again: free for epmd (a race with other programs is unlikely)
}

// ---- OS processes ----

// A child process in its own process group, stdout and stderr to a file; killed (by its id)
// when the object goes.
class child {
  public:
    child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
        char tmpl[] = "/tmp/erlcpp_dist_live_XXXXXX";
        int out = ::mkstemp(tmpl);
        REQUIRE(out >= 0);
        out_path_ = tmpl;
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::setpgid(0, 0);
            ::dup2(out, 1);
            ::dup2(out, 2);
            int devnull = ::open("/dev/null", O_RDONLY);
            ::dup2(devnull, 0);
            for (const auto& e : env)
                ::putenv(const_cast<char*>(e.c_str()));
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
        ::close(out);
    }
    child(child&& o) noexcept
        : pid_(o.pid_), exited_(std::exchange(o.exited_, true)), out_path_(std::move(o.out_path_)) {
    }
    child& operator=(child&&) = delete;
    ~child() {
        if (out_path_.empty()) return; // moved from
        if (!exited_) {
            ::kill(-pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::unlink(out_path_.c_str());
    }
    // SIGKILL to the whole group (the node dies at once, as in a crash).
    void kill() const { ::kill(-pid_, SIGKILL); }
    // SIGSTOP / SIGCONT: the program stays alive but says nothing.
    void pause() const { ::kill(pid_, SIGSTOP); }
    void resume() const { ::kill(pid_, SIGCONT); }
    // SIGTERM to the program itself (an orderly stop).
    void terminate() const { ::kill(pid_, SIGTERM); }
    std::string output() const {
        std::ifstream f(out_path_);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
    bool wait_output(std::string_view text, std::chrono::milliseconds timeout) const {
        for (auto end = clock_type::now() + timeout; clock_type::now() < end;
             std::this_thread::sleep_for(50ms))
            if (output().find(text) != std::string::npos) return true;
        return false;
    }
    bool wait_exit(std::chrono::milliseconds timeout) {
        for (auto end = clock_type::now() + timeout; clock_type::now() < end;
             std::this_thread::sleep_for(50ms)) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                exited_ = true;
                // The node's own children (erl_child_setup, inet_gethost) go with the group.
                ::kill(-pid_, SIGKILL);
                return true;
            }
        }
        return false;
    }

  private:
    pid_t pid_ = -1;
    bool exited_ = false;
    std::string out_path_;
};

// An epmd of our own on a free port, killed at the end (it was started with
// -relaxed_command_check so that `epmd -kill` works even with nodes still registered).
struct epmd_daemon {
    std::uint16_t port = free_port();
    epmd_daemon() {
        auto cmd = fmt::format("timeout 10 epmd -port {} -daemon -relaxed_command_check", port);
        REQUIRE(std::system(cmd.c_str()) == 0);
        for (auto end = clock_type::now() + 10s; clock_type::now() < end;
             std::this_thread::sleep_for(20ms))
            if (connect_to(port).valid()) return;
        FAIL("epmd did not start on port " << port);
    }
    ~epmd_daemon() {
        auto cmd = fmt::format("timeout 10 epmd -port {} -kill >/dev/null 2>&1", port);
        (void)!std::system(cmd.c_str());
    }
    std::string env() const { return fmt::format("ERL_EPMD_PORT={}", port); }
};

// An Erlang node: `erl -name|-sname NAME -setcookie COOKIE -noshell -eval EXPR`, bounded by
// `timeout` in case anything hangs.
inline child start_erl(const epmd_daemon& d, const std::string& name_flag, const std::string& name,
                       const std::string& cookie, const std::string& expr) {
    return child(
        {"timeout", "60", "erl", name_flag, name, "-setcookie", cookie, "-noshell", "-eval", expr},
        {d.env()});
}

// An Erlang node that only waits (cookie "secret"), once it is up.
inline child start_idle_erl(const epmd_daemon& d, const std::string& name) {
    child erl =
        start_erl(d, "-name", name, "secret", "io:format(\"ERL-READY~n\"), timer:sleep(infinity).");
    REQUIRE(erl.wait_output("ERL-READY", std::chrono::seconds(20)));
    return erl;
}

} // namespace dist_live

#define SKIP_WITHOUT_ERLANG()                                                                      \
    do {                                                                                           \
        if (!dist_live::have_erlang()) {                                                           \
            WARN("erl or epmd not on PATH: skipping the live distribution test");                  \
            return;                                                                                \
        }                                                                                          \
    } while (0)
