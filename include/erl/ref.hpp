// erl::ref — a unique reference, like Erlang's make_ref().
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>

#include <fmt/format.h>

#include <erl/atom.hpp>

namespace erl {

// Shaped like Erlang's NEWER_REFERENCE_EXT: a node, a creation and up to five 32-bit words (we
// make three, as a local Erlang node does). References made in one program never repeat.
class ref {
  public:
    constexpr ref() noexcept = default; // the null reference
    ref(atom node, std::uint32_t creation, std::array<std::uint32_t, 3> words) noexcept
        : node_(node), creation_(creation), words_(words) {}

    atom node() const noexcept { return node_; }
    std::uint32_t creation() const noexcept { return creation_; }
    const std::array<std::uint32_t, 3>& words() const noexcept { return words_; }
    bool is_null() const noexcept { return words_ == std::array<std::uint32_t, 3>{}; }
    explicit operator bool() const noexcept { return !is_null(); }

    friend bool operator==(const ref&, const ref&) noexcept = default;
    friend std::strong_ordering operator<=>(const ref& a, const ref& b) noexcept {
        if (auto c = a.node_ <=> b.node_; c != 0) return c;
        if (auto c = a.creation_ <=> b.creation_; c != 0) return c;
        return a.words_ <=> b.words_;
    }

  private:
    atom node_;
    std::uint32_t creation_ = 0;
    std::array<std::uint32_t, 3> words_{};
};

// A fresh reference. Inside a process it names the process's node; outside any runtime it names
// `nonode@nohost`. Cheap (one relaxed atomic increment) and unique within the program.
ref make_ref();

} // namespace erl

template <>
struct std::hash<erl::ref> {
    std::size_t operator()(const erl::ref& r) const noexcept {
        std::uint64_t h = (std::uint64_t(r.words()[0]) << 32) ^ r.words()[1];
        h ^= std::uint64_t(r.words()[2]) * 0x9E3779B97F4A7C15ull;
        return std::hash<std::uint64_t>{}(h ^ r.creation());
    }
};

// Printed as Erlang prints references: `#Ref<0.W2.W1.W0>`.
template <>
struct fmt::formatter<erl::ref> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::ref& r, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::format_to(ctx.out(), "#Ref<0.{}.{}.{}>", r.words()[2], r.words()[1],
                              r.words()[0]);
    }
};
