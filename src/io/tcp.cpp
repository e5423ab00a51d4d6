// erl::tcp: the socket calls, run by the calling process, which waits on its I/O handle when the
// kernel says EAGAIN (io/poller.hpp has the readiness protocol).
#include <erl/tcp.hpp>

#include <erl/detail/process_api.hpp>

#include <arpa/inet.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "io/io_errors.hpp"
#include "io/poller.hpp"
#include "io/resolve.hpp"
#include "io/tcp_internal.hpp"
#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl {
namespace detail {
namespace {

using clock = std::chrono::steady_clock;

enum class attempt { done, would_block };

bool same(const io_handle& h, std::uint64_t id) noexcept {
    return h.in_use && h.id() == id;
}

// The calling process and the handle a socket value names (which may have closed since: every
// step re-checks its generation under its lock).
struct target {
    process_control& self;
    io_poller& io;
    io_handle& h;
    std::uint64_t id;
};

target resolve_target(io_handle_ref r, const char* operation) {
    process_control& p = require_process(operation);
    if (r.is_null() || r.creation() != p.rt->creation) throw_io(io_errc::closed, operation);
    io_handle* h = p.rt->io.find(r.id());
    if (!h) throw_io(io_errc::closed, operation);
    return {p, p.rt->io, *h, r.id()};
}

// Runs `fn(io_poller&, io_handle&)` with the handle locked, if `r` names an open one in some
// runtime (from inside a process or from a plain thread).
template <typename Fn>
bool with_handle(io_handle_ref r, Fn&& fn) {
    if (r.is_null()) return false;
    auto run = [&](runtime_impl& rt) {
        io_handle* h = rt.io.find(r.id());
        if (!h) return false;
        std::lock_guard lock(h->lock);
        if (!same(*h, r.id())) return false;
        fn(rt.io, *h);
        return true;
    };
    process_control* p = current_process();
    if (p && p->rt->creation == r.creation()) return run(*p->rt);
    bool found = false;
    with_runtime(r.creation(), [&](runtime_impl& rt) { found = run(rt); });
    return found;
}

// Waits until the handle's `dir` may be ready (an edge, a close, the end of a busy holder), a
// signal arrives or the deadline passes. Kills unwind from here.
void wait_on(target& t, io_direction dir, clock::time_point deadline) {
    struct unregister {
        target& t;
        io_direction dir;
        ~unregister() {
            std::lock_guard lock(t.h.lock);
            std::erase(t.h.waiters[dir], &t.self);
        }
    } guard{t, dir};
    wait_signals(t.self, deadline, deadline != clock::time_point::max());
}

// Registers the caller as a waiter unless the deadline has passed (then: timeout).
void register_waiter(target& t, io_direction dir, clock::time_point deadline,
                     const char* operation) {
    if (deadline != clock::time_point::max() && clock::now() >= deadline)
        throw_io(io_errc::timeout, operation);
    t.h.waiters[dir].push_back(&t.self);
}

// Calls attempt(fd), a non-blocking system call, until it is done; between tries waits for
// readiness of `dir`. attempt throws io_error for a failure.
template <typename Attempt>
void run_io(target& t, io_direction dir, clock::time_point deadline, const char* operation,
            Attempt&& try_once) {
    count_reduction(t.self);
    for (;;) {
        int fd;
        {
            std::lock_guard lock(t.h.lock);
            if (!same(t.h, t.id) || t.h.closing) throw_io(io_errc::closed, operation);
            ++t.h.users;
            t.h.ready[dir] = false;
            fd = t.h.fd;
        }
        attempt r;
        try {
            r = try_once(fd);
        } catch (...) {
            std::lock_guard lock(t.h.lock);
            t.io.leave_locked(t.h);
            throw;
        }
        {
            std::lock_guard lock(t.h.lock);
            t.io.leave_locked(t.h);
            if (r == attempt::done) return;
            if (!same(t.h, t.id) || t.h.closing) throw_io(io_errc::closed, operation);
            if (t.h.ready[dir]) continue; // an edge came while we tried
            register_waiter(t, dir, deadline, operation);
        }
        wait_on(t, dir, deadline);
    }
}

// Holds a direction of the socket for one whole operation (an exact read, a whole write), so
// that two processes never interleave their bytes.
class direction_hold {
  public:
    direction_hold(target& t, io_direction dir, clock::time_point deadline, const char* operation)
        : t_(t), dir_(dir) {
        for (;;) {
            {
                std::lock_guard lock(t.h.lock);
                if (!same(t.h, t.id) || t.h.closing) throw_io(io_errc::closed, operation);
                if (!t.h.busy[dir]) {
                    t.h.busy[dir] = true;
                    return;
                }
                register_waiter(t, dir, deadline, operation);
            }
            wait_on(t, dir, deadline);
        }
    }
    ~direction_hold() {
        std::lock_guard lock(t_.h.lock);
        if (!same(t_.h, t_.id)) return;
        t_.h.busy[dir_] = false;
        t_.io.wake_locked(t_.h, dir_);
    }
    direction_hold(const direction_hold&) = delete;
    direction_hold& operator=(const direction_hold&) = delete;

  private:
    target& t_;
    io_direction dir_;
};

bool would_block(int e) noexcept {
    return e == EAGAIN || e == EWOULDBLOCK;
}

// --- ownership: a socket is a resource of its controlling process ---

void release_socket(runtime_impl& rt, std::uint64_t id, const pid& owner) noexcept {
    io_handle* h = rt.io.find(id);
    if (!h) return;
    std::lock_guard lock(h->lock);
    if (same(*h, id) && h->owner == owner) rt.io.close_locked(*h);
}

bool socket_held(runtime_impl& rt, std::uint64_t id, const pid& owner) noexcept {
    io_handle* h = rt.io.find(id);
    if (!h) return false;
    std::lock_guard lock(h->lock);
    return same(*h, id) && h->owner == owner && !h->closing;
}

owned_resource socket_resource(std::uint64_t id) noexcept {
    return owned_resource{id, &release_socket, &socket_held};
}

// A new handle for `fd`, owned by the calling process. Closes fd on failure.
io_handle& open_owned(process_control& p, int fd, bool listening) {
    io_handle& h = p.rt->io.open(fd, listening, p.self_pid());
    std::uint64_t id;
    {
        std::lock_guard lock(h.lock);
        id = h.id();
    }
    try {
        own_resource(p, socket_resource(id));
    } catch (...) {
        std::lock_guard lock(h.lock);
        p.rt->io.close_locked(h);
        throw;
    }
    return h;
}

void set_int_option(int fd, int level, int name, int value, const char* operation) {
    if (::setsockopt(fd, level, name, &value, sizeof value) < 0) throw_errno(errno, operation);
}

void apply_options(int fd, const tcp::socket_options& o, const char* operation) {
    if (o.nodelay) set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1, operation);
    if (o.keepalive) set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1, operation);
    if (o.recv_buffer > 0) set_int_option(fd, SOL_SOCKET, SO_RCVBUF, o.recv_buffer, operation);
    if (o.send_buffer > 0) set_int_option(fd, SOL_SOCKET, SO_SNDBUF, o.send_buffer, operation);
}

// With h.lock held: applies an active mode change (Erlang's setopts(S, [{active, A}])).
void set_active_locked(runtime_impl& rt, io_handle& h, tcp::active mode) {
    if (mode.adds()) {
        if (h.active >= 0) {
            long n = long(h.active) + mode.value();
            if (n <= 0) {
                h.active = 0;
                const tcp::socket self(io_handle_ref(rt.creation, h.id()));
                send_signal(rt, h.owner, make_message<tcp_passive>(tcp_passive{self}));
            } else {
                h.active = int(std::min<long>(n, 32767)); // Erlang's cap for {active, N}
            }
        }
    } else {
        h.active = mode.value();
    }
    // Data that arrived while passive raised no new edge: look now.
    if (h.active != 0 && (h.ready[io_in] || !h.pending.empty())) rt.io.active_read_locked(h);
}

endpoint_storage storage_of(const tcp::endpoint& e) {
    endpoint_storage s;
    if (e.is_v6()) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&s.addr);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(e.port());
        std::memcpy(&a->sin6_addr, e.bytes().data(), 16);
        a->sin6_scope_id = e.scope_id();
        s.len = sizeof(sockaddr_in6);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&s.addr);
        a->sin_family = AF_INET;
        a->sin_port = htons(e.port());
        std::memcpy(&a->sin_addr, e.bytes().data(), 4);
        s.len = sizeof(sockaddr_in);
    }
    return s;
}

tcp::endpoint endpoint_of(const sockaddr_storage& s) {
    if (s.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&s);
        return tcp::endpoint::from_bytes({reinterpret_cast<const std::uint8_t*>(&a->sin6_addr), 16},
                                         ntohs(a->sin6_port), a->sin6_scope_id);
    }
    auto* a = reinterpret_cast<const sockaddr_in*>(&s);
    return tcp::endpoint::from_bytes({reinterpret_cast<const std::uint8_t*>(&a->sin_addr), 4},
                                     ntohs(a->sin_port));
}

// Runs `call(fd)`, a quick system call returning < 0 with errno on failure, on the open socket
// `r` names, under its lock (the fd cannot close meanwhile); throws closed or the errno.
template <typename Call>
void on_fd(io_handle_ref r, const char* operation, Call&& call) {
    int err = 0;
    if (!with_handle(r, [&](io_poller&, io_handle& h) {
            if (call(h.fd) < 0) err = errno;
        }))
        throw_io(io_errc::closed, operation);
    if (err) throw_errno(err, operation);
}

tcp::endpoint address_of(io_handle_ref r, bool peer, const char* operation) {
    sockaddr_storage s{};
    on_fd(r, operation, [&](int fd) {
        socklen_t len = sizeof s;
        return peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&s), &len)
                    : ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
    });
    return endpoint_of(s);
}

void hand_over(io_handle_ref r, const pid& new_owner, const char* operation) {
    process_control& p = require_process(operation);
    const pid self = p.self_pid();
    bool found = false, owner = false;
    std::uint64_t id = r.id();
    with_handle(r, [&](io_poller&, io_handle& h) {
        found = !h.closing;
        owner = h.owner == self;
        if (found && owner) h.owner = new_owner;
    });
    if (!found) throw_io(io_errc::closed, operation);
    if (!owner) throw_io(io_errc::not_owner, operation);
    if (new_owner == self) return;
    bool delivered =
        new_owner.creation() == p.rt->creation &&
        send_signal(*p.rt, new_owner, envelope_ptr(new adopt_signal(socket_resource(id))));
    if (!delivered) release_socket(*p.rt, id, new_owner); // a dead owner: the socket closes
}

pid owner_of(io_handle_ref r) {
    pid owner;
    with_handle(r, [&](io_poller&, io_handle& h) { owner = h.owner; });
    return owner;
}

void close_handle(io_handle_ref r) noexcept {
    with_handle(r, [](io_poller& io, io_handle& h) { io.close_locked(h); });
}

bool handle_open(io_handle_ref r) noexcept {
    bool open = false;
    with_handle(r, [&](io_poller&, io_handle& h) { open = !h.closing; });
    return open;
}

// A passive read of what is there: `take(pending)` hands out buffered bytes, `receive(fd)` is
// one recv (its result: bytes, 0 at the end of the stream, -1 with errno).
template <typename Take, typename Receive>
std::size_t passive_read(target& t, clock::time_point deadline, const char* operation, Take take,
                         Receive receive) {
    {
        std::lock_guard lock(t.h.lock);
        if (!same(t.h, t.id) || t.h.closing) throw_io(io_errc::closed, operation);
        if (t.h.active != 0) throw_io(io_errc::active, operation);
        if (!t.h.pending.empty()) return take(t.h.pending);
    }
    std::size_t got = 0;
    bool eof = false;
    run_io(t, io_in, deadline, operation, [&](int fd) {
        for (;;) {
            ssize_t n = receive(fd);
            if (n > 0) {
                got = std::size_t(n);
                return attempt::done;
            }
            if (n == 0) {
                eof = true;
                return attempt::done;
            }
            if (errno == EINTR) continue;
            if (would_block(errno)) return attempt::would_block;
            throw_errno(errno, operation);
        }
    });
    if (eof) {
        std::lock_guard lock(t.h.lock);
        if (same(t.h, t.id)) t.h.peer_closed = true;
        throw_io(io_errc::closed, operation);
    }
    return got;
}

// Reads what is there into `buffer` (at most buffer.size() bytes).
std::size_t read_into(target& t, std::span<char> buffer, clock::time_point deadline,
                      const char* operation) {
    return passive_read(
        t, deadline, operation,
        [&](std::string& pending) {
            std::size_t n = std::min(buffer.size(), pending.size());
            std::memcpy(buffer.data(), pending.data(), n);
            pending.erase(0, n);
            return n;
        },
        [&](int fd) { return ::recv(fd, buffer.data(), buffer.size(), 0); });
}

// Reads what is there (at most `limit` bytes) into a string of just that size.
std::string read_available(target& t, std::size_t limit, clock::time_point deadline,
                           const char* operation) {
    std::string data;
    passive_read(
        t, deadline, operation,
        [&](std::string& pending) {
            std::size_t n = std::min(limit, pending.size());
            data.assign(pending, 0, n);
            pending.erase(0, n);
            return n;
        },
        [&](int fd) { return receive_into_string(fd, limit, data); });
    return data;
}

} // namespace

tcp::listener adopt_listener_fd(int fd) {
    process_control& p = require_process("erl::tcp::listen");
    io_handle& h = open_owned(p, fd, true);
    std::lock_guard lock(h.lock);
    return tcp::listener(io_handle_ref(p.rt->creation, h.id()));
}

} // namespace detail

namespace tcp {

using detail::attempt;
using detail::clock;

endpoint::endpoint(std::string_view address, std::uint16_t port) {
    auto parsed = detail::parse_numeric(address);
    if (!parsed)
        detail::throw_io(io_errc::bad_address,
                         fmt::format("erl::tcp::endpoint: not a numeric address: {}", address));
    *this = from_bytes(parsed->bytes, port, parsed->scope_id);
}

endpoint endpoint::from_bytes(std::span<const std::uint8_t> bytes, std::uint16_t port,
                              std::uint32_t scope_id) {
    endpoint e;
    if (bytes.size() != 4 && bytes.size() != 16)
        detail::throw_io(io_errc::bad_address, "erl::tcp::endpoint: 4 or 16 address bytes");
    std::copy(bytes.begin(), bytes.end(), e.addr_.begin());
    e.v6_ = bytes.size() == 16;
    e.port_ = port;
    e.scope_id_ = e.v6_ ? scope_id : 0;
    return e;
}

std::string endpoint::address() const {
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = {};
    ::inet_ntop(v6_ ? AF_INET6 : AF_INET, addr_.data(), text, sizeof text);
    std::string s(text);
    if (v6_ && scope_id_) s += fmt::format("%{}", scope_id_);
    return s;
}

std::string socket::read(std::size_t n, timeout t) const {
    static constexpr const char* op = "erl::tcp::socket::read";
    auto target = detail::resolve_target(h_, op);
    auto deadline = t.deadline();
    if (n == 0) {
        std::size_t chunk;
        {
            std::lock_guard lock(target.h.lock);
            chunk = target.h.read_chunk;
        }
        return detail::read_available(target, chunk, deadline, op);
    }
    detail::direction_hold hold(target, detail::io_in, deadline, op);
    std::string data(n, '\0');
    std::size_t got = 0;
    try {
        while (got < n)
            got += detail::read_into(target, std::span<char>(data).subspan(got), deadline, op);
    } catch (...) {
        // A timeout or the end of the stream: what arrived is kept for the next read.
        std::lock_guard lock(target.h.lock);
        if (detail::same(target.h, target.id) && got > 0)
            target.h.pending.insert(0, data.data(), got);
        throw;
    }
    return data;
}

std::size_t socket::read_some(std::span<char> buffer, timeout t) const {
    static constexpr const char* op = "erl::tcp::socket::read_some";
    auto target = detail::resolve_target(h_, op);
    if (buffer.empty()) return 0;
    return detail::read_into(target, buffer, t.deadline(), op);
}

void socket::write(std::string_view data, timeout t) const {
    static constexpr const char* op = "erl::tcp::socket::write";
    auto target = detail::resolve_target(h_, op);
    auto deadline = t.deadline();
    detail::direction_hold hold(target, detail::io_out, deadline, op);
    std::size_t sent = 0;
    while (sent < data.size()) {
        detail::run_io(target, detail::io_out, deadline, op, [&](int fd) {
            for (;;) {
                ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
                if (n >= 0) {
                    sent += std::size_t(n);
                    return attempt::done;
                }
                if (errno == EINTR) continue;
                if (detail::would_block(errno)) return attempt::would_block;
                if (errno == EPIPE) detail::throw_io(io_errc::closed, op);
                detail::throw_errno(errno, op);
            }
        });
    }
}

void socket::shutdown(shutdown_how how) const {
    static constexpr const char* op = "erl::tcp::socket::shutdown";
    int h = how == shutdown_how::read ? SHUT_RD : how == shutdown_how::write ? SHUT_WR : SHUT_RDWR;
    detail::on_fd(h_, op, [h](int fd) { return ::shutdown(fd, h); });
}

void socket::close() const noexcept {
    detail::close_handle(h_);
}

endpoint socket::local() const {
    return detail::address_of(h_, false, "erl::tcp::socket::local");
}

endpoint socket::peer() const {
    return detail::address_of(h_, true, "erl::tcp::socket::peer");
}

void socket::set_active(active mode) const {
    static constexpr const char* op = "erl::tcp::socket::set_active";
    auto target = detail::resolve_target(h_, op);
    std::lock_guard lock(target.h.lock);
    if (!detail::same(target.h, target.id) || target.h.closing)
        detail::throw_io(io_errc::closed, op);
    detail::set_active_locked(*target.self.rt, target.h, mode);
}

void socket::set_nodelay(bool on) const {
    static constexpr const char* op = "erl::tcp::socket::set_nodelay";
    int v = on ? 1 : 0;
    detail::on_fd(h_, op,
                  [v](int fd) { return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v); });
}

void socket::controlling_process(const pid& new_owner) const {
    detail::hand_over(h_, new_owner, "erl::tcp::socket::controlling_process");
}

pid socket::owner() const {
    return detail::owner_of(h_);
}

bool socket::is_open() const noexcept {
    return detail::handle_open(h_);
}

socket listener::accept(timeout t) const {
    static constexpr const char* op = "erl::tcp::listener::accept";
    auto target = detail::resolve_target(h_, op);
    int client = -1;
    detail::run_io(target, detail::io_in, t.deadline(), op, [&](int fd) {
        for (;;) {
            client = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (client >= 0) return attempt::done;
            int e = errno;
            // A connection reset before we took it, or a signal: look again.
            if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
            if (detail::would_block(e)) return attempt::would_block;
            detail::throw_errno(e, op);
        }
    });
    socket_options inherited;
    {
        std::lock_guard lock(target.h.lock);
        inherited = target.h.inherit;
    }
    try {
        detail::apply_options(client, inherited, op);
    } catch (...) {
        ::close(client);
        throw;
    }
    detail::io_handle& h = detail::open_owned(target.self, client, false);
    std::lock_guard lock(h.lock);
    h.read_chunk = std::max<std::size_t>(inherited.read_chunk, 1);
    h.inherit = inherited;
    socket s(detail::io_handle_ref(target.self.rt->creation, h.id()));
    if (inherited.mode != active::off())
        detail::set_active_locked(*target.self.rt, h, inherited.mode);
    return s;
}

endpoint listener::local() const {
    return detail::address_of(h_, false, "erl::tcp::listener::local");
}

void listener::close() const noexcept {
    detail::close_handle(h_);
}

void listener::controlling_process(const pid& new_owner) const {
    detail::hand_over(h_, new_owner, "erl::tcp::listener::controlling_process");
}

pid listener::owner() const {
    return detail::owner_of(h_);
}

bool listener::is_open() const noexcept {
    return detail::handle_open(h_);
}

listener listen(std::string_view host, std::uint16_t port, const listen_options& options) {
    static constexpr const char* op = "erl::tcp::listen";
    auto& p = detail::require_process(op);
    auto addresses = detail::resolve_host(host, port, true, op);
    std::error_code last;
    for (const endpoint& e : addresses) {
        auto storage = detail::storage_of(e);
        int fd = ::socket(storage.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = std::error_code(errno, std::generic_category());
            continue;
        }
        try {
            if (options.reuseaddr) detail::set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, op);
            if (options.reuseport) detail::set_int_option(fd, SOL_SOCKET, SO_REUSEPORT, 1, op);
            if (e.is_v6())
                detail::set_int_option(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.ipv6_only ? 1 : 0,
                                       op);
            detail::apply_options(fd, options.socket, op);
        } catch (...) {
            ::close(fd);
            throw;
        }
        if (::bind(fd, reinterpret_cast<const sockaddr*>(&storage.addr), storage.len) < 0 ||
            ::listen(fd, std::max(1, options.backlog)) < 0) {
            last = std::error_code(errno, std::generic_category());
            ::close(fd);
            continue;
        }
        detail::io_handle& h = detail::open_owned(p, fd, true);
        std::lock_guard lock(h.lock);
        h.inherit = options.socket;
        return listener(detail::io_handle_ref(p.rt->creation, h.id()));
    }
    detail::throw_io(last ? last : make_error_code(io_errc::bad_address),
                     fmt::format("{} {}:{}", op, host, port));
}

socket connect(const endpoint& to, timeout t, const socket_options& options) {
    static constexpr const char* op = "erl::tcp::connect";
    auto& p = detail::require_process(op);
    auto deadline = t.deadline();
    auto storage = detail::storage_of(to);
    int fd = ::socket(storage.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) detail::throw_errno(errno, op);
    try {
        detail::apply_options(fd, options, op);
    } catch (...) {
        ::close(fd);
        throw;
    }
    int rc;
    do {
        rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&storage.addr), storage.len);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS) {
        int e = errno;
        ::close(fd);
        detail::throw_io(std::error_code(e, std::generic_category()), fmt::format("{} {}", op, to));
    }
    detail::io_handle& h = detail::open_owned(p, fd, false);
    std::uint64_t id;
    {
        std::lock_guard lock(h.lock);
        id = h.id();
        h.read_chunk = std::max<std::size_t>(options.read_chunk, 1);
        h.inherit = options;
    }
    socket s(detail::io_handle_ref(p.rt->creation, id));
    detail::target target{p, p.rt->io, h, id};
    try {
        detail::run_io(target, detail::io_out, deadline, op, [&](int sock) {
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
            if (err != 0)
                detail::throw_io(std::error_code(err, std::generic_category()),
                                 fmt::format("{} {}", op, to));
            sockaddr_storage peer{};
            socklen_t plen = sizeof peer;
            if (::getpeername(sock, reinterpret_cast<sockaddr*>(&peer), &plen) == 0)
                return attempt::done;
            return attempt::would_block;
        });
    } catch (...) {
        s.close();
        throw;
    }
    if (options.mode != active::off()) s.set_active(options.mode);
    return s;
}

socket connect(std::string_view host, std::uint16_t port, timeout t,
               const socket_options& options) {
    static constexpr const char* op = "erl::tcp::connect";
    auto deadline = t.deadline();
    auto addresses = detail::resolve_host(host, port, false, op);
    std::exception_ptr last;
    for (const endpoint& e : addresses) {
        try {
            auto left = deadline == clock::time_point::max()
                            ? timeout(infinity)
                            : timeout(std::max(deadline - clock::now(), clock::duration::zero()));
            return connect(e, left, options);
        } catch (const io_error& err) {
            if (err.is_timeout()) throw;
            last = std::current_exception();
        }
    }
    if (last) std::rethrow_exception(last);
    detail::throw_io(io_errc::bad_address, fmt::format("{} {}:{}", op, host, port));
}

} // namespace tcp
} // namespace erl
