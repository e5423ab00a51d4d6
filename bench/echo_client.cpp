// echo_client: the closed-loop load generator of bench/run's `echo` benchmark (issue #8).
//
// Plain C++20 on POSIX sockets and epoll, with nothing of erlcpp in it, so that erlcpp's echo
// server and Erlang's are measured by the same neutral client.
//
//   echo_client --port N [--host H] [--connections C] [--size B] [--warmup S] [--duration S]
//               [--threads T] [--server-pid PID] [--server-threads N] [--impl NAME]
//               [--stall S]
//
// It opens C connections one after the other, each proven by one echo before the next (a
// refused or timed-out connect is retried a few times with back-off), then, with all connected
// and accepted, every connection runs a closed loop: send one B-byte message,
// wait for all B bytes to come back, check them, send the next. The first S seconds of
// --warmup are not recorded; echoes completed in the following --duration seconds are counted
// and their round-trip times go into a log-linear histogram (128 buckets per power of two:
// percentiles within 0.4 %, the maximum exact). At the end, outstanding echoes are drained and
// the connections closed cleanly (FIN, no reset).
//
// Output: one line
//   RESULT name=echo impl=<impl> n=<echoes> seconds=<duration> rate=<echoes/s> unit=req/s
//          threads=<server threads> peak_rss_kb=<KB> p50_us=.. p90_us=.. p99_us=.. p999_us=..
//          max_us=.. mean_us=.. connections=C size=B client_threads=T warmup_s=S errors=0
//          server_cpu_pct=.. client_cpu_pct=.. rss_of=server|client
// peak_rss_kb is the server's VmHWM when --server-pid is given (rss_of=server), else the
// client's own (rss_of=client); the CPU figures are over the measured window, in % of one CPU
// (server_cpu_pct=-1 without --server-pid). Round-trip time runs from just before send() to
// the return of the epoll_wait() that reported the last bytes of the echo.
//
// Errors (a refused server, a connection closed or reset by the server, an echo that differs
// from what was sent, a connection with no echo for --stall seconds) end the run with a
// message on stderr and exit status 1; bad options exit with 2.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using peer::now_ns;

struct options {
    std::string host = "127.0.0.1";
    int port = -1;
    int connections = 1000;
    long size = 64;
    double warmup_s = 2;
    double duration_s = 10;
    int threads = 1;
    long server_pid = 0;
    int server_threads = 0;
    std::string impl = "unknown";
    double stall_s = 10;
};

const char* const USAGE =
    "usage: echo_client --port N [--host H] [--connections C] [--size B] [--warmup S]\n"
    "                   [--duration S] [--threads T] [--server-pid PID] [--server-threads N]\n"
    "                   [--impl NAME] [--stall S]\n"
    "  --host H            server address or name (default 127.0.0.1)\n"
    "  --connections C     concurrent connections, one message in flight each (default 1000)\n"
    "  --size B            message size in bytes (default 64)\n"
    "  --warmup S          seconds of traffic before measuring (default 2)\n"
    "  --duration S        seconds measured (default 10)\n"
    "  --threads T         client threads, each with its own epoll and C/T connections\n"
    "                      (default 1)\n"
    "  --server-pid PID    the server's process: its peak RSS and CPU time are reported\n"
    "  --server-threads N  written as threads=N in the RESULT line (the server's schedulers)\n"
    "  --impl NAME         written as impl=NAME in the RESULT line (default unknown)\n"
    "  --stall S           a connection with no echo for S seconds is an error (default 10)\n";

[[noreturn]] void usage_error(const std::string& why) {
    std::fprintf(stderr, "echo_client: %s\n%s", why.c_str(), USAGE);
    std::exit(2);
}

double number(const char* opt, const char* text, double lo, double hi) {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= lo && v <= hi))
        usage_error(std::string("bad value for ") + opt + ": " + text);
    return v;
}

options parse_options(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(USAGE, stdout);
            std::exit(0);
        }
        if (i + 1 >= argc) usage_error("missing value for " + a);
        const char* v = argv[++i];
        if (a == "--host")
            o.host = v;
        else if (a == "--port")
            o.port = static_cast<int>(number("--port", v, 1, 65535));
        else if (a == "--connections")
            o.connections = static_cast<int>(number("--connections", v, 1, 1'000'000));
        else if (a == "--size")
            o.size = static_cast<long>(number("--size", v, 1, 16 << 20));
        else if (a == "--warmup")
            o.warmup_s = number("--warmup", v, 0, 86400);
        else if (a == "--duration")
            o.duration_s = number("--duration", v, 0.001, 86400);
        else if (a == "--threads")
            o.threads = static_cast<int>(number("--threads", v, 1, 1024));
        else if (a == "--server-pid")
            o.server_pid = static_cast<long>(number("--server-pid", v, 1, 1 << 30));
        else if (a == "--server-threads")
            o.server_threads = static_cast<int>(number("--server-threads", v, 0, 1 << 20));
        else if (a == "--impl")
            o.impl = v;
        else if (a == "--stall")
            o.stall_s = number("--stall", v, 0.01, 86400);
        else
            usage_error("unknown option " + a);
    }
    if (o.port < 0) usage_error("--port is required");
    if (o.threads > o.connections) o.threads = o.connections;
    return o;
}

// --- errors shared by all threads ------------------------------------------------------------
std::atomic<bool> g_failed{false};
std::mutex g_error_mutex;
std::string g_error;

void fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(g_error_mutex);
    if (g_error.empty()) g_error = what;
    g_failed.store(true, std::memory_order_relaxed);
}

std::string errno_text(int err) {
    return std::strerror(err);
}

// --- latency histogram -----------------------------------------------------------------------
// Log-linear over nanoseconds: values below 256 exact, above that 128 buckets per power of two.
class histogram {
  public:
    static constexpr int sub_bits = 7;
    static constexpr std::uint64_t exact_below = std::uint64_t{2} << sub_bits; // 256

    histogram() : counts_((64 - sub_bits + 1) << sub_bits, 0) {}

    void add(std::int64_t ns) {
        auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0));
        ++counts_[index(v)];
        ++count_;
        sum_ += v;
        max_ = std::max(max_, v);
    }

    void merge(const histogram& o) {
        for (std::size_t i = 0; i < counts_.size(); ++i)
            counts_[i] += o.counts_[i];
        count_ += o.count_;
        sum_ += o.sum_;
        max_ = std::max(max_, o.max_);
    }

    std::uint64_t count() const { return count_; }
    double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
    std::uint64_t max() const { return max_; }

    // The value at quantile q (0 < q <= 1): the middle of the bucket holding the sample of rank
    // ceil(q * count), never above the exact maximum.
    double quantile(double q) const {
        if (count_ == 0) return 0;
        auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
        rank = std::clamp<std::uint64_t>(rank, 1, count_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                auto [lo, hi] = bounds(i);
                return std::min(static_cast<double>(lo + hi) / 2, static_cast<double>(max_));
            }
        }
        return static_cast<double>(max_);
    }

  private:
    static std::size_t index(std::uint64_t v) {
        if (v < exact_below) return static_cast<std::size_t>(v);
        int shift = std::bit_width(v) - 1 - sub_bits; // >= 1
        return (static_cast<std::size_t>(shift) << sub_bits) + static_cast<std::size_t>(v >> shift);
    }

    // Inclusive range of the values that fall into bucket i.
    static std::pair<std::uint64_t, std::uint64_t> bounds(std::size_t i) {
        if (i < exact_below) return {i, i};
        std::size_t shift = (i >> sub_bits) - 1;
        std::uint64_t mantissa = i - (shift << sub_bits);
        return {mantissa << shift, ((mantissa + 1) << shift) - 1};
    }

    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
};

// --- connecting --------------------------------------------------------------------------------
struct address {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_INET;
};

address resolve(const options& o) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(o.port);
    int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
        std::fprintf(stderr, "echo_client: cannot resolve %s: %s\n", o.host.c_str(),
                     gai_strerror(rc));
        std::exit(1);
    }
    address a;
    std::memcpy(&a.addr, res->ai_addr, res->ai_addrlen);
    a.len = res->ai_addrlen;
    a.family = res->ai_family;
    freeaddrinfo(res);
    return a;
}

// One attempt: a connected non-blocking socket, or -1 with the errno in `err`.
int try_connect(const address& a, int timeout_ms, int& err) {
    int fd = socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        return -1;
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.len) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
            close(fd);
            return -1;
        }
        pollfd p{fd, POLLOUT, 0};
        int r = poll(&p, 1, timeout_ms);
        socklen_t len = sizeof err;
        if (r == 0)
            err = ETIMEDOUT;
        else if (r < 0)
            err = errno;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            close(fd);
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

[[noreturn]] void connection_failed(const options& o, int index, const std::string& why) {
    std::fprintf(stderr, "echo_client: %s:%d: connection %d of %d: %s\n", o.host.c_str(), o.port,
                 index + 1, o.connections, why.c_str());
    std::exit(1);
}

// Connection `index`, retried with back-off while the failure may be passing (a listen backlog
// that is full, a server still starting); exits with a message when it is not.
int connect_with_retry(const options& o, const address& a, int index) {
    constexpr int attempts = 6; // back-off 25 ms doubling: at most ~0.8 s of sleeping
    int err = 0;
    for (int k = 0; k < attempts; ++k) {
        int fd = try_connect(a, 3000, err);
        if (fd >= 0) return fd;
        bool passing = err == ECONNREFUSED || err == ECONNRESET || err == ETIMEDOUT ||
                       err == EAGAIN || err == EINTR;
        if (!passing) break;
        if (k + 1 < attempts) std::this_thread::sleep_for(std::chrono::milliseconds(25 << k));
    }
    connection_failed(o, index, "cannot connect: " + errno_text(err));
}

// One round trip on a fresh connection, before any load. connect() returns once the kernel has
// the connection queued, before the server accepts it, and a server that is busy with the first
// connections' traffic may take seconds to accept the last ones (Erlang's acceptor did: the
// last quarter of 1,000 connections waited through a whole 3 s run). After this, every
// connection is accepted and served.
void first_echo(const options& o, int fd, const std::vector<unsigned char>& msg, int index) {
    std::vector<unsigned char> back(msg.size());
    std::size_t sent = 0, got = 0;
    std::int64_t deadline = now_ns() + static_cast<std::int64_t>(o.stall_s * 1e9);
    while (got < msg.size()) {
        std::int64_t left_ms = (deadline - now_ns()) / 1'000'000;
        if (left_ms <= 0)
            connection_failed(o, index,
                              "no echo of the first message within " + std::to_string(o.stall_s) +
                                  " s");
        pollfd p{fd, static_cast<short>(sent < msg.size() ? POLLIN | POLLOUT : POLLIN), 0};
        int r = poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left_ms, 1000)));
        if (r < 0 && errno != EINTR) connection_failed(o, index, "poll: " + errno_text(errno));
        if (r <= 0) continue;
        if (p.revents & POLLOUT) {
            ssize_t n = send(fd, msg.data() + sent, msg.size() - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += static_cast<std::size_t>(n);
            else if (errno != EAGAIN && errno != EINTR)
                connection_failed(o, index, "send: " + errno_text(errno));
        }
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
            ssize_t n = recv(fd, back.data() + got, msg.size() - got, 0);
            if (n == 0) connection_failed(o, index, "the server closed the connection");
            if (n > 0)
                got += static_cast<std::size_t>(n);
            else if (errno != EAGAIN && errno != EINTR)
                connection_failed(o, index, "recv: " + errno_text(errno));
        }
    }
    if (std::memcmp(back.data(), msg.data(), msg.size()) != 0)
        connection_failed(o, index, "the echo of the first message differs from it");
}

void raise_fd_limit(const options& o) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    auto need = static_cast<rlim_t>(o.connections) + 32;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        std::fprintf(stderr,
                     "echo_client: %d connections need about %llu file descriptors; "
                     "RLIMIT_NOFILE allows %llu (raise the hard limit: ulimit -Hn)\n",
                     o.connections, static_cast<unsigned long long>(need),
                     static_cast<unsigned long long>(rl.rlim_cur));
        std::exit(1);
    }
}

// --- the closed loop ---------------------------------------------------------------------------
struct connection {
    int fd = -1;
    int id = 0;
    std::vector<unsigned char> msg; // the message in flight
    std::size_t sent = 0;           // bytes of msg written
    std::size_t got = 0;            // bytes of its echo read and checked
    std::uint64_t seq = 0;          // messages sent
    std::int64_t sent_at = 0;       // ns, just before the first send() of msg
    bool busy = false;              // a message is in flight
    bool want_out = false;          // EPOLLOUT is armed (a partial send is pending)
};

struct phases {
    std::int64_t start;   // traffic begins
    std::int64_t measure; // recording begins
    std::int64_t end;     // recording ends; no new messages
    std::int64_t stall;   // ns without an echo that make an error
};

class worker {
  public:
    worker(std::vector<connection> conns, std::size_t size, phases ph)
        : conns_(std::move(conns)), size_(size), ph_(ph), scratch_(size) {}

    void run() {
        ep_ = epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0) return fail("epoll_create1: " + errno_text(errno));
        for (auto& c : conns_) {
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.ptr = &c;
            if (epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0)
                return fail("epoll_ctl: " + errno_text(errno));
        }
        for (auto& c : conns_)
            if (!send_next(c)) break;
        loop();
        for (auto& c : conns_)
            close(c.fd);
        close(ep_);
    }

    const histogram& latencies() const { return hist_; }

  private:
    void loop() {
        std::vector<epoll_event> events(512);
        std::int64_t next_stall_check = now_ns() + 1'000'000'000;
        while (!g_failed.load(std::memory_order_relaxed)) {
            int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 100);
            if (n < 0 && errno != EINTR) return fail("epoll_wait: " + errno_text(errno));
            std::int64_t now = now_ns();
            for (int i = 0; i < n; ++i) {
                auto& c = *static_cast<connection*>(events[i].data.ptr);
                bool ok = true;
                if (events[i].events & EPOLLOUT) ok = send_rest(c);
                if (ok && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                    ok = receive(c, now);
                if (!ok) return;
            }
            if (now >= ph_.end && in_flight_ == 0) return; // drained
            if (now >= next_stall_check) {
                if (!check_stalls(now)) return;
                next_stall_check = now + 1'000'000'000;
            }
        }
    }

    bool send_next(connection& c) {
        ++c.seq;
        std::uint64_t stamp = c.seq ^ (static_cast<std::uint64_t>(c.id) << 40);
        std::memcpy(c.msg.data(), &stamp, std::min(sizeof stamp, size_));
        c.sent = 0;
        c.got = 0;
        c.busy = true;
        ++in_flight_;
        c.sent_at = now_ns();
        return send_rest(c);
    }

    bool send_rest(connection& c) {
        while (c.sent < size_) {
            ssize_t n = send(c.fd, c.msg.data() + c.sent, size_ - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<std::size_t>(n);
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return c.want_out || arm(c, EPOLLIN | EPOLLOUT, true);
            } else {
                return broken(c, "send: " + errno_text(errno));
            }
        }
        return !c.want_out || arm(c, EPOLLIN, false);
    }

    bool arm(connection& c, std::uint32_t events, bool want_out) {
        epoll_event ev{};
        ev.events = events;
        ev.data.ptr = &c;
        if (epoll_ctl(ep_, EPOLL_CTL_MOD, c.fd, &ev) != 0)
            return broken(c, "epoll_ctl: " + errno_text(errno));
        c.want_out = want_out;
        return true;
    }

    // One recv() per readiness report (level-triggered: more bytes report again).
    bool receive(connection& c, std::int64_t now) {
        std::size_t want = c.busy ? c.sent - c.got : size_;
        if (want == 0) want = size_; // all sent bytes echoed: anything more is unexpected
        ssize_t n;
        do {
            n = recv(c.fd, scratch_.data(), want, 0);
        } while (n < 0 && errno == EINTR);
        if (n == 0) return broken(c, "the server closed the connection");
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            return broken(c, "recv: " + errno_text(errno));
        }
        auto got = static_cast<std::size_t>(n);
        if (!c.busy || c.got + got > c.sent)
            return broken(c, "the server sent " + std::to_string(got) + " bytes nobody asked for");
        if (std::memcmp(scratch_.data(), c.msg.data() + c.got, got) != 0)
            return broken(c, "the echo differs from the message sent (bytes " +
                                 std::to_string(c.got) + "-" + std::to_string(c.got + got - 1) +
                                 " of message " + std::to_string(c.seq) + ")");
        c.got += got;
        if (c.got < size_) return true;
        c.busy = false;
        --in_flight_;
        if (now >= ph_.measure && now < ph_.end) hist_.add(now - c.sent_at);
        if (now >= ph_.end) return true;
        return send_next(c);
    }

    bool check_stalls(std::int64_t now) {
        for (auto& c : conns_)
            if (c.busy && now - c.sent_at > ph_.stall)
                return broken(c, "no echo for " + std::to_string((now - c.sent_at) / 1'000'000) +
                                     " ms (" + std::to_string(c.got) + " of " +
                                     std::to_string(size_) + " bytes back)");
        return true;
    }

    bool broken(const connection& c, const std::string& why) {
        fail("connection " + std::to_string(c.id + 1) + ", message " + std::to_string(c.seq) +
             ": " + why);
        return false;
    }

    std::vector<connection> conns_;
    std::size_t size_;
    phases ph_;
    std::vector<unsigned char> scratch_;
    histogram hist_;
    int ep_ = -1;
    long in_flight_ = 0;
};

// --- CPU and memory figures
// ----------------------------------------------------------------------- utime + stime of a
// process in seconds (/proc/<pid>/stat fields 14 and 15), or -1.
double process_cpu_s(long pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return -1;
    char buf[1024];
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')'); // the command name may hold spaces
    if (!p) return -1;
    unsigned long long utime = 0, stime = 0;
    // after ")": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime(14) stime(15)
    if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) != 2)
        return -1;
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_s() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return s(ru.ru_utime) + s(ru.ru_stime);
}

void sleep_until_ns(std::int64_t t) {
    for (std::int64_t now = now_ns(); now < t && !g_failed.load(); now = now_ns())
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(std::min<std::int64_t>(t - now, 50'000'000)));
}

} // namespace

int main(int argc, char** argv) {
    options o = parse_options(argc, argv);
    raise_fd_limit(o);
    address addr = resolve(o);
    auto size = static_cast<std::size_t>(o.size);

    // Connect everything, one echo each, before the warm-up; connection i goes to thread i % T.
    std::vector<std::vector<connection>> per_thread(static_cast<std::size_t>(o.threads));
    for (int i = 0; i < o.connections; ++i) {
        connection c;
        c.fd = connect_with_retry(o, addr, i);
        c.id = i;
        c.msg.resize(size);
        for (std::size_t k = 0; k < size; ++k)
            c.msg[k] = static_cast<unsigned char>(k * 7 + static_cast<std::size_t>(i) * 13);
        first_echo(o, c.fd, c.msg, i);
        per_thread[static_cast<std::size_t>(i % o.threads)].push_back(std::move(c));
    }

    phases ph{};
    ph.start = now_ns();
    ph.measure = ph.start + static_cast<std::int64_t>(o.warmup_s * 1e9);
    ph.end = ph.measure + static_cast<std::int64_t>(o.duration_s * 1e9);
    ph.stall = static_cast<std::int64_t>(o.stall_s * 1e9);

    std::vector<worker> workers;
    workers.reserve(per_thread.size());
    for (auto& conns : per_thread)
        workers.emplace_back(std::move(conns), size, ph);
    std::vector<std::thread> threads;
    for (auto& w : workers)
        threads.emplace_back([&w] { w.run(); });

    // CPU of both sides over the measured window.
    sleep_until_ns(ph.measure);
    double server0 = o.server_pid ? process_cpu_s(o.server_pid) : -1;
    double client0 = self_cpu_s();
    sleep_until_ns(ph.end);
    double server1 = o.server_pid ? process_cpu_s(o.server_pid) : -1;
    double client1 = self_cpu_s();
    long peak_kb = -1;
    if (o.server_pid) {
        std::string status = "/proc/" + std::to_string(o.server_pid) + "/status";
        peak_kb = peer::status_kb_of(status.c_str(), "VmHWM");
    }
    for (auto& t : threads)
        t.join();

    if (g_failed.load()) {
        std::fprintf(stderr, "echo_client: %s:%d: %s\n", o.host.c_str(), o.port, g_error.c_str());
        return 1;
    }

    histogram h;
    for (auto& w : workers)
        h.merge(w.latencies());
    double seconds = o.duration_s;
    double server_pct = server0 >= 0 && server1 >= 0 ? 100 * (server1 - server0) / seconds : -1;
    double client_pct = 100 * (client1 - client0) / seconds;
    const char* rss_of = "server";
    if (peak_kb < 0) {
        if (o.server_pid)
            std::fprintf(stderr,
                         "echo_client: cannot read /proc/%ld/status: reporting the "
                         "client's peak RSS\n",
                         o.server_pid);
        peak_kb = peer::peak_rss_kb();
        rss_of = "client";
    }
    if (client_pct >= 90.0 * o.threads)
        std::fprintf(stderr,
                     "echo_client: warning: the client used %.0f%% of its %d thread(s): the "
                     "rate may be the client's limit, not the server's\n",
                     client_pct, o.threads);
    if (h.count() == 0) {
        std::fprintf(stderr, "echo_client: no echo completed in the measured %.3f s\n", seconds);
        return 1;
    }
    auto us = [&](double q) { return h.quantile(q) / 1e3; };
    std::printf("RESULT name=echo impl=%s n=%llu seconds=%.6f rate=%.1f unit=req/s threads=%d "
                "peak_rss_kb=%ld p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
                "mean_us=%.1f connections=%d size=%ld client_threads=%d warmup_s=%g errors=0 "
                "server_cpu_pct=%.0f client_cpu_pct=%.0f rss_of=%s\n",
                o.impl.c_str(), static_cast<unsigned long long>(h.count()), seconds,
                static_cast<double>(h.count()) / seconds, o.server_threads, peak_kb, us(0.50),
                us(0.90), us(0.99), us(0.999), static_cast<double>(h.max()) / 1e3, h.mean() / 1e3,
                o.connections, o.size, o.threads, o.warmup_s, server_pct, client_pct, rss_of);
    return 0;
}
