// erl::ref — a unique reference, like Erlang's make_ref().
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <span>
#include <type_traits>

#include <fmt/format.h>

#include <erl/atom.hpp>

namespace erl {

// Shaped like Erlang's NEWER_REFERENCE_EXT: a node, a creation and one to five 32-bit words (we
// make three, as a local Erlang node does; OTP 24+ nodes may send up to five). References made
// in one program never repeat. As in OTP, the words beyond a reference's length count as zero:
// a three-word reference equals the five-word one with the same low words and two zero words.
class ref {
  public:
    static constexpr std::size_t max_words = 5;

    constexpr ref() noexcept = default; // the null reference
    ref(atom node, std::uint32_t creation, std::array<std::uint32_t, 3> words) noexcept
        : node_(node), creation_(creation), words_{words[0], words[1], words[2], 0, 0}, len_(3) {}
    // 1 to 5 words (least significant first, as on the wire); throws std::invalid_argument
    // otherwise.
    ref(atom node, std::uint32_t creation, std::span<const std::uint32_t> words);

    atom node() const noexcept { return node_; }
    std::uint32_t creation() const noexcept { return creation_; }
    // The words as sent on the wire, least significant first.
    std::span<const std::uint32_t> words() const noexcept { return {words_.data(), len_}; }
    bool is_null() const noexcept { return words_ == std::array<std::uint32_t, max_words>{}; }
    explicit operator bool() const noexcept { return !is_null(); }
    // Whether this reference was made by a runtime of this program.
    bool is_local() const noexcept;

    friend bool operator==(const ref& a, const ref& b) noexcept {
        // The node, the creation and the five words are 28 bytes without padding (checked
        // below): compared 8 bytes at a time, the low words first (where references differ),
        // not field by field nor with memcmp. Refs are compared on every call's reply.
        return a.bytes<std::uint64_t>(8) == b.bytes<std::uint64_t>(8) &&
               a.bytes<std::uint64_t>(16) == b.bytes<std::uint64_t>(16) &&
               a.bytes<std::uint64_t>(0) == b.bytes<std::uint64_t>(0) &&
               a.bytes<std::uint32_t>(24) == b.bytes<std::uint32_t>(24);
    }
    // Erlang's order: node (name, then creation), then the words, most significant first.
    friend std::strong_ordering operator<=>(const ref& a, const ref& b) noexcept {
        if (auto c = a.node_ <=> b.node_; c != 0) return c;
        if (auto c = a.creation_ <=> b.creation_; c != 0) return c;
        for (std::size_t i = max_words; i-- > 0;)
            if (auto c = a.words_[i] <=> b.words_[i]; c != 0) return c;
        return std::strong_ordering::equal;
    }

  private:
    static constexpr bool packed() noexcept {
        return sizeof(atom) == 4 && offsetof(ref, creation_) == 4 && offsetof(ref, words_) == 8 &&
               offsetof(ref, len_) == 28;
    }
    template <typename T>
    T bytes(std::size_t offset) const noexcept {
        // (checked where it is used, when ref is complete: clang checks a template's non-dependent
        // assertions where it is defined)
        static_assert(sizeof(T) > 0 && std::is_standard_layout_v<ref> && packed(),
                      "ref's == reads node, creation and words as 28 contiguous bytes");
        T v;
        std::memcpy(&v, reinterpret_cast<const unsigned char*>(this) + offset, sizeof v);
        return v;
    }

    atom node_;
    std::uint32_t creation_ = 0;
    std::array<std::uint32_t, max_words> words_{}; // unused words stay zero
    std::uint8_t len_ = 3;
};

// A fresh reference. Inside a process it names the process's node; outside any runtime it names
// `nonode@nohost`. Cheap (one relaxed atomic increment) and unique within the program.
ref make_ref();

} // namespace erl

template <>
struct std::hash<erl::ref> {
    std::size_t operator()(const erl::ref& r) const noexcept {
        auto w = r.words();
        std::uint64_t h = (std::uint64_t(r.node().index()) << 32) ^ r.creation();
        for (std::size_t i = 0; i < erl::ref::max_words; ++i) // missing words are zero, as in ==
            h = (h ^ (i < w.size() ? w[i] : 0u)) * 0x9E3779B97F4A7C15ull;
        return std::hash<std::uint64_t>{}(h);
    }
};

// Printed as Erlang prints references: `#Ref<0.W2.W1.W0>` for this program's references (node
// index 0), `#Ref<N.W2.W1.W0>` with a non-zero N standing for the node otherwise, as for pids.
template <>
struct fmt::formatter<erl::ref> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::ref& r, FormatContext& ctx) const -> decltype(ctx.out()) {
        unsigned node = r.is_local() ? 0u : r.node().index() + 1u;
        auto out = fmt::format_to(ctx.out(), "#Ref<{}", node);
        auto w = r.words();
        for (std::size_t i = w.size(); i-- > 0;)
            out = fmt::format_to(out, ".{}", w[i]);
        return fmt::format_to(out, ">");
    }
};
