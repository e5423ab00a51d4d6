// erl::tcp — TCP sockets for processes, shaped like Erlang's gen_tcp: calls look blocking but
// only the calling process waits; every call that waits takes a timeout; errors are thrown as
// erl::io_error.
//
// A socket belongs to its controlling process (the one that opened or accepted it, or the one it
// was handed to with controlling_process): it is closed when that process ends, so sockets never
// leak, and in active mode its data arrives to that process as messages (erl::tcp_data, ...), so
// one receive can wait for socket data and other messages together.
//
// erl::tcp::socket and erl::tcp::listener are small values (like an Erlang port): copy them,
// send them in messages; the socket itself lives until close() or its owner's end.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <erl/io_error.hpp>
#include <erl/pid.hpp>
#include <erl/timeout.hpp>

namespace erl::detail {
// What socket and listener share: the identity of an I/O handle in one runtime.
class io_handle_ref {
  public:
    constexpr io_handle_ref() noexcept = default;
    constexpr io_handle_ref(std::uint32_t creation, std::uint64_t id) noexcept
        : creation_(creation), id_(id) {}
    std::uint32_t creation() const noexcept { return creation_; }
    std::uint64_t id() const noexcept { return id_; }
    bool is_null() const noexcept { return id_ == 0; }
    friend bool operator==(const io_handle_ref&, const io_handle_ref&) = default;

  private:
    std::uint32_t creation_ = 0;
    std::uint64_t id_ = 0;
};
} // namespace erl::detail

namespace erl::tcp {

// An IPv4 or IPv6 address with a port.
class endpoint {
  public:
    endpoint() = default;
    // A numeric address ("127.0.0.1", "::1", "fe80::1%eth0"); throws io_error(bad_address).
    endpoint(std::string_view address, std::uint16_t port);

    std::string address() const;
    std::uint16_t port() const noexcept { return port_; }
    bool is_v6() const noexcept { return v6_; }
    std::uint32_t scope_id() const noexcept { return scope_id_; }
    // The raw address: 4 bytes (IPv4) or 16 (IPv6), network order.
    std::span<const std::uint8_t> bytes() const noexcept { return {addr_.data(), v6_ ? 16u : 4u}; }

    static endpoint from_bytes(std::span<const std::uint8_t> bytes, std::uint16_t port,
                               std::uint32_t scope_id = 0);

    friend bool operator==(const endpoint&, const endpoint&) = default;

  private:
    std::array<std::uint8_t, 16> addr_{};
    std::uint16_t port_ = 0;
    bool v6_ = false;
    std::uint32_t scope_id_ = 0;
};

// {active, false | true | once | N}: how a socket's incoming data reaches its owner.
class active {
  public:
    static constexpr active off() noexcept { return active(0); }  // passive: read() it
    static constexpr active on() noexcept { return active(-1); }  // every chunk as a message
    static constexpr active once() noexcept { return active(1); } // one message, then passive
    static constexpr active n(int count) noexcept { return active(count, true); } // N more
    constexpr int value() const noexcept { return value_; }
    // n(k) adds k to the messages left (as Erlang's {active, N}); the others set the mode.
    constexpr bool adds() const noexcept { return adds_; }
    friend constexpr bool operator==(active, active) = default;

  private:
    constexpr explicit active(int v, bool adds = false) noexcept : value_(v), adds_(adds) {}
    int value_;
    bool adds_;
};

// Options of a connected socket.
struct socket_options {
    bool nodelay = false;   // TCP_NODELAY
    bool keepalive = false; // SO_KEEPALIVE
    int recv_buffer = 0;    // SO_RCVBUF in bytes; 0 keeps the system's
    int send_buffer = 0;    // SO_SNDBUF in bytes; 0 keeps the system's
    active mode = active::off();
    std::size_t read_chunk = 16 * 1024; // most bytes one read or one tcp_data message carries
};

struct listen_options {
    int backlog = 1024;      // the kernel caps it at net.core.somaxconn
    bool reuseaddr = true;   // SO_REUSEADDR (gen_tcp's default is false; servers want true)
    bool reuseport = false;  // SO_REUSEPORT
    bool ipv6_only = false;  // IPV6_V6ONLY for an IPv6 listener ("::" also takes IPv4 otherwise)
    socket_options socket{}; // applied to the listening socket and inherited by accepted ones
};

enum class shutdown_how { read, write, read_write };

class socket {
  public:
    socket() = default; // names no socket
    explicit socket(detail::io_handle_ref h) noexcept : h_(h) {}

    // Erlang's recv(S, N, Timeout): n == 0 returns what is there (at least one byte, at most
    // read_chunk); n > 0 returns exactly n bytes. Throws io_error: closed when the peer closed
    // the stream (bytes of an unfinished exact read stay for the next read), timeout, active
    // when the socket is in active mode.
    std::string read(std::size_t n = 0, timeout t = infinity) const;
    // Reads at most buffer.size() bytes into buffer (at least one); returns how many.
    std::size_t read_some(std::span<char> buffer, timeout t = infinity) const;
    // Writes all of `data`. Concurrent writers never interleave. On timeout an unknown prefix
    // may have been sent (the stream is then unusable, as with gen_tcp's send_timeout).
    void write(std::string_view data, timeout t = infinity) const;
    void shutdown(shutdown_how how) const;
    // Closes the socket (any process may). Idempotent; never throws.
    void close() const noexcept;

    endpoint local() const;
    endpoint peer() const;
    void set_active(active mode) const;
    void set_nodelay(bool on) const;
    // Makes `new_owner` the controlling process (only the owner may: else not_owner). If
    // new_owner is dead the socket is closed.
    void controlling_process(const pid& new_owner) const;
    pid owner() const;
    // Whether the socket is still open.
    bool is_open() const noexcept;

    detail::io_handle_ref handle() const noexcept { return h_; }
    explicit operator bool() const noexcept { return !h_.is_null(); }
    friend bool operator==(const socket&, const socket&) = default;

  private:
    detail::io_handle_ref h_;
};

class listener {
  public:
    listener() = default;
    explicit listener(detail::io_handle_ref h) noexcept : h_(h) {}

    // Waits for a connection; the new socket belongs to the calling process. Any process may
    // accept (acceptor pools); throws io_error (timeout, closed, emfile...).
    socket accept(timeout t = infinity) const;
    endpoint local() const;
    void close() const noexcept;
    void controlling_process(const pid& new_owner) const;
    pid owner() const;
    bool is_open() const noexcept;

    detail::io_handle_ref handle() const noexcept { return h_; }
    explicit operator bool() const noexcept { return !h_.is_null(); }
    friend bool operator==(const listener&, const listener&) = default;

  private:
    detail::io_handle_ref h_;
};

// Listens on `host` ("0.0.0.0", "::", "127.0.0.1", a name, or "" for every IPv4 address) and
// `port` (0: any free port; local().port() says which). The listener belongs to the caller.
listener listen(std::string_view host, std::uint16_t port, const listen_options& options = {});
// Connects to host:port (a numeric address or a name, tried in order) within `t`.
socket connect(std::string_view host, std::uint16_t port, timeout t = std::chrono::seconds(30),
               const socket_options& options = {});
socket connect(const endpoint& to, timeout t = std::chrono::seconds(30),
               const socket_options& options = {});

} // namespace erl::tcp

namespace erl {

// Active-mode messages to a socket's owner, as gen_tcp's {tcp, S, Data}, {tcp_closed, S},
// {tcp_error, S, Reason} and {tcp_passive, S}.
struct tcp_data {
    tcp::socket socket;
    std::string data;
};
struct tcp_closed {
    tcp::socket socket;
};
struct tcp_error {
    tcp::socket socket;
    std::error_code code;
    atom reason;
};
struct tcp_passive {
    tcp::socket socket;
};

} // namespace erl

template <>
struct std::hash<erl::tcp::socket> {
    std::size_t operator()(const erl::tcp::socket& s) const noexcept {
        return std::hash<std::uint64_t>{}(s.handle().id() ^
                                          (std::uint64_t(s.handle().creation()) << 40));
    }
};

// `#Port<0.12>` like an Erlang port; endpoints as `127.0.0.1:80` and `[::1]:80`.
template <>
struct fmt::formatter<erl::tcp::socket> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::tcp::socket& s, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::format_to(ctx.out(), "#Port<0.{}>", std::uint32_t(s.handle().id()));
    }
};
template <>
struct fmt::formatter<erl::tcp::listener> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::tcp::listener& s, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::format_to(ctx.out(), "#Port<0.{}>", std::uint32_t(s.handle().id()));
    }
};
template <>
struct fmt::formatter<erl::tcp::endpoint> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::tcp::endpoint& e, FormatContext& ctx) const -> decltype(ctx.out()) {
        if (e.is_v6()) return fmt::format_to(ctx.out(), "[{}]:{}", e.address(), e.port());
        return fmt::format_to(ctx.out(), "{}:{}", e.address(), e.port());
    }
};
