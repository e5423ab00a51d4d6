// erl::pid — the name of a process, local or (later) on another node.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

#include <fmt/format.h>

#include <erl/atom.hpp>

namespace erl {

// Shaped like Erlang's NEW_PID_EXT: node, number (ID), serial and creation, so a pid of a remote
// node can be represented and sent back to it unchanged. For a local process `number` indexes the
// runtime's process table and `serial` counts reuses of that slot, so a stale pid never reaches a
// newer process. `creation` tells runtimes (node incarnations) apart; every runtime in a program
// has its own.
class pid;
namespace detail {
std::uint64_t pid_home(const pid& p) noexcept;
}

class pid {
  public:
    constexpr pid() noexcept = default; // the null pid: names no process
    constexpr pid(atom node, std::uint32_t number, std::uint32_t serial,
                  std::uint32_t creation) noexcept
        : node_(node), creation_(creation), number_(number), serial_(serial) {}

    atom node() const noexcept { return node_; }
    std::uint32_t number() const noexcept { return number_; }
    std::uint32_t serial() const noexcept { return serial_; }
    std::uint32_t creation() const noexcept { return creation_; }

    // Only pid() itself: a pid that names a node is never null, even with zero numbers (the
    // distribution layer's stand-in for a process monitored by {Name, Node} is one).
    bool is_null() const noexcept {
        return node_ == atom() && creation_ == 0 && number_ == 0 && serial_ == 0;
    }
    explicit operator bool() const noexcept { return !is_null(); }
    // Whether this pid names a process of a runtime in this program.
    bool is_local() const noexcept;

    friend bool operator==(const pid&, const pid&) noexcept = default;
    // Erlang's order (as OTP 25 compares pids): serial, then number, then node name, then
    // creation; so a remote pid sorts among the local ones by its numbers, as in Erlang.
    friend std::strong_ordering operator<=>(const pid& a, const pid& b) noexcept {
        if (auto c = a.serial_ <=> b.serial_; c != 0) return c;
        if (auto c = a.number_ <=> b.number_; c != 0) return c;
        if (auto c = a.node_ <=> b.node_; c != 0) return c;
        return a.creation_ <=> b.creation_;
    }

  private:
    friend std::uint64_t detail::pid_home(const pid& p) noexcept;
    atom node_;
    std::uint32_t creation_ = 0; // beside node_: pid_home reads the two as one word
    std::uint32_t number_ = 0;
    std::uint32_t serial_ = 0;
};

namespace detail {
// Which runtime of which node a pid names, in one word (node and creation): a send compares it
// with its own runtime's at once.
inline std::uint64_t pid_home(const pid& p) noexcept {
    static_assert(sizeof(atom) == sizeof(std::uint32_t));
    return std::uint64_t(p.creation_) << 32 | p.node_.index();
}
} // namespace detail

} // namespace erl

template <>
struct std::hash<erl::pid> {
    std::size_t operator()(const erl::pid& p) const noexcept {
        std::uint64_t h = (std::uint64_t(p.number()) << 32) ^ p.serial();
        h ^= (std::uint64_t(p.creation()) << 17) ^ p.node().index();
        return std::hash<std::uint64_t>{}(h * 0x9E3779B97F4A7C15ull);
    }
};

// Printed as Erlang prints pids: `<0.42.0>` for a local process (node index 0), `<N.42.0>` with a
// non-zero node index for pids of other nodes (the index is only meaningful within this program).
template <>
struct fmt::formatter<erl::pid> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::pid& p, FormatContext& ctx) const -> decltype(ctx.out()) {
        unsigned node = p.is_local() ? 0u : p.node().index() + 1u;
        return fmt::format_to(ctx.out(), "<{}.{}.{}>", node, p.number(), p.serial());
    }
};
