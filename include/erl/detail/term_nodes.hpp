// Internal: the immutable payloads behind erl::term. Not part of the public API.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <erl/bigint.hpp>

namespace erl::detail {

struct term_node {
    explicit term_node(term_tag t) noexcept : tag(t) {}
    std::atomic<std::uint32_t> refs{1};
    term_tag tag;
};

struct big_node : term_node {
    explicit big_node(bigint v) : term_node(term_tag::big), value(std::move(v)) {}
    bigint value;
};
struct atom_text_node : term_node {
    explicit atom_text_node(std::string n) : term_node(term_tag::atom_text), name(std::move(n)) {}
    std::string name;
};
struct tuple_node : term_node {
    tuple_node() : term_node(term_tag::tuple) {}
    std::vector<term> elems;
};
struct list_node : term_node {
    list_node() : term_node(term_tag::list) {}
    std::vector<term> elems; // never empty
    term tail;               // never a non-empty list ([a|[b]] is stored as [a,b])
};
struct map_node : term_node {
    map_node() : term_node(term_tag::map) {}
    std::vector<std::pair<term, term>> entries; // sorted by key, keys unique (=:=)
};
struct bits_node : term_node {
    bits_node() : term_node(term_tag::bits) {}
    std::vector<std::uint8_t> bytes;
    std::uint8_t tail_bits = 8; // bits used in the last byte, 1..8 (8 for binaries)
};
struct pid_node : term_node {
    pid_node() : term_node(term_tag::pid) {}
    term node;
    std::uint32_t id = 0, serial = 0, creation = 0;
};
struct port_node : term_node {
    port_node() : term_node(term_tag::port) {}
    term node;
    std::uint64_t id = 0;
    std::uint32_t creation = 0;
};
struct ref_node : term_node {
    ref_node() : term_node(term_tag::ref) {}
    term node;
    std::uint32_t creation = 0;
    std::uint8_t len = 0;
    std::array<std::uint32_t, 5> words{};
};
struct export_node : term_node {
    export_node() : term_node(term_tag::export_fun) {}
    term module, function;
    std::uint8_t arity = 0;
};
// A closure from another node: opaque to C++, kept field by field so it re-encodes exactly.
struct local_fun_node : term_node {
    local_fun_node() : term_node(term_tag::local_fun) {}
    std::uint8_t arity = 0;
    std::array<std::uint8_t, 16> uniq{};
    std::uint32_t index = 0;
    term module, old_index, old_uniq, pid;
    std::vector<term> free_vars;
};

// Friend of term: builds terms from nodes and reaches the payloads.
struct term_access {
    static term adopt(term_node* n) noexcept { return term(n); }
    static term_tag tag(const term& t) noexcept { return t.tag_; }
    static const term_node* node(const term& t) noexcept { return t.heap() ? t.u_.node : nullptr; }
    template <typename N>
    static const N& as(const term& t) noexcept {
        return *static_cast<const N*>(t.u_.node);
    }
    static std::uint32_t atom_index(const term& t) noexcept { return t.u_.atom; }
    // Takes the payload reference out of `t` (left as []); null for inline terms.
    static term_node* steal(term& t) noexcept {
        if (!t.heap()) return nullptr;
        term_node* n = t.u_.node;
        t.tag_ = term_tag::nil;
        return n;
    }
};

} // namespace erl::detail

namespace erl {
inline void term::retain() const noexcept {
    if (heap()) u_.node->refs.fetch_add(1, std::memory_order_relaxed);
}
} // namespace erl
