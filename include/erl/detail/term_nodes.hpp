// Internal: the immutable payloads behind erl::term. Not part of the public API.
//
// Every payload is one block: a fixed header followed, for the variable-size kinds, by its
// elements, entries, bytes or limbs (allocated with the exact size; no second allocation for
// a std::vector). A payload lives in one of two places:
//
//   * on the heap, alone: `refs` counts the terms that hold it; the last one frees it (the
//     children it holds are released without recursion, see term.cpp);
//   * in a decode arena (`in_arena`): etf::decode builds a whole message into one arena
//     (normally a single block). The terms stored inside its payloads hold no references; the
//     arena's own count stands for every term outside it that points at any of its payloads,
//     and its last release frees the whole block at once. `refs` then holds the payload's byte
//     offset in its arena chunk, which leads to the arena.
//
// Payloads are never destroyed through their destructors: the terms they hold are taken out
// (released) one by one and the block freed, so every payload type must have no other member
// that needs destruction.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <span>
#include <string_view>
#include <utility>

#include <erl/bigint.hpp>

namespace erl::detail {

struct term_node {
    explicit term_node(term_tag t) noexcept : tag(t) {}
    std::atomic<std::uint32_t> refs{1}; // heap: references; arena: offset in the arena chunk
    term_tag tag;
    std::uint8_t in_arena = 0;
    std::uint8_t small = 0; // bits: bits used in the last byte (1..8); big: 1 when negative
    std::uint8_t spare = 0;
};
static_assert(sizeof(term_node) == 8);

// The trailing array of a variable-size payload starts right after its header struct.
template <typename T, typename Node>
T* trailing(Node* n) noexcept {
    static_assert(sizeof(Node) % alignof(T) == 0);
    return reinterpret_cast<T*>(reinterpret_cast<char*>(n) + sizeof(Node));
}
template <typename T, typename Node>
const T* trailing(const Node* n) noexcept {
    static_assert(sizeof(Node) % alignof(T) == 0);
    return reinterpret_cast<const T*>(reinterpret_cast<const char*>(n) + sizeof(Node));
}

struct alignas(8) big_node : term_node {
    explicit big_node(std::uint32_t n) noexcept : term_node(term_tag::big), size(n) {}
    std::uint32_t size; // limbs (32-bit, least significant first), never 0
    std::span<const std::uint32_t> limbs() const noexcept {
        return {trailing<std::uint32_t>(this), size};
    }
    bool negative() const noexcept { return small != 0; }
    static std::size_t bytes(std::size_t n) noexcept {
        return sizeof(big_node) + n * sizeof(std::uint32_t);
    }
};
struct alignas(8) atom_text_node : term_node {
    explicit atom_text_node(std::uint32_t n) noexcept : term_node(term_tag::atom_text), size(n) {}
    std::uint32_t size;
    std::string_view name() const noexcept { return {trailing<char>(this), size}; }
    static std::size_t bytes(std::size_t n) noexcept { return sizeof(atom_text_node) + n; }
};
struct alignas(8) tuple_node : term_node {
    explicit tuple_node(std::uint32_t n) noexcept : term_node(term_tag::tuple), size(n) {}
    std::uint32_t size;
    term* elems() noexcept { return trailing<term>(this); }
    std::span<const term> elements() const noexcept { return {trailing<term>(this), size}; }
    static std::size_t bytes(std::size_t n) noexcept { return sizeof(tuple_node) + n * 16; }
};
struct alignas(8) list_node : term_node {
    explicit list_node(std::uint32_t n) noexcept : term_node(term_tag::list), size(n) {}
    std::uint32_t size; // never 0
    term tail;          // never a non-empty list ([a|[b]] is stored as [a,b])
    term* elems() noexcept { return trailing<term>(this); }
    std::span<const term> elements() const noexcept { return {trailing<term>(this), size}; }
    static std::size_t bytes(std::size_t n) noexcept { return sizeof(list_node) + n * 16; }
};
struct alignas(8) map_node : term_node {
    explicit map_node(std::uint32_t n) noexcept : term_node(term_tag::map), size(n) {}
    std::uint32_t size;
    // Sorted by key, keys unique (=:=).
    std::pair<term, term>* entries() noexcept { return trailing<std::pair<term, term>>(this); }
    std::span<const std::pair<term, term>> entries() const noexcept {
        return {trailing<std::pair<term, term>>(this), size};
    }
    static std::size_t bytes(std::size_t n) noexcept { return sizeof(map_node) + n * 32; }
};
struct alignas(8) bits_node : term_node {
    explicit bits_node(std::size_t n) noexcept : term_node(term_tag::bits), size(n) { small = 8; }
    std::size_t size;
    std::uint8_t* data() noexcept { return trailing<std::uint8_t>(this); }
    std::span<const std::uint8_t> bytes() const noexcept {
        return {trailing<std::uint8_t>(this), size};
    }
    std::uint8_t tail_bits() const noexcept { return small; } // 1..8 (8 for binaries)
    static std::size_t bytes(std::size_t n) noexcept { return sizeof(bits_node) + n; }
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
struct alignas(8) local_fun_node : term_node {
    explicit local_fun_node(std::uint32_t n) : term_node(term_tag::local_fun), num_free(n) {}
    std::uint32_t num_free;
    std::uint8_t arity = 0;
    std::array<std::uint8_t, 16> uniq{};
    std::uint32_t index = 0;
    term module, old_index, old_uniq, pid;
    term* free() noexcept { return trailing<term>(this); }
    std::span<const term> free_vars() const noexcept { return {trailing<term>(this), num_free}; }
    static std::size_t bytes(std::size_t n) noexcept { return sizeof(local_fun_node) + n * 16; }
};
static_assert(sizeof(term) == 16 && sizeof(std::pair<term, term>) == 32);

// ---- decode arenas ----

// Every arena chunk starts with this; the first chunk is the arena itself.
struct arena;
struct arena_chunk {
    arena* owner;
    arena_chunk* next; // further chunks (first chunk only: the list of them)
};
struct arena : arena_chunk {
    std::atomic<std::size_t> refs{1};
    std::size_t size = 0; // bytes of this first chunk
};
static_assert(sizeof(arena_chunk) == 16 && sizeof(arena) == 32);

inline arena* arena_of(const term_node* n) noexcept {
    auto off = n->refs.load(std::memory_order_relaxed);
    return reinterpret_cast<const arena_chunk*>(reinterpret_cast<const char*>(n) - off)->owner;
}
// Frees an arena and its chunks (its count reached 0).
void free_arena(arena* a) noexcept;

// The size of an arena's first chunk for an estimate of `bytes`: a power of two from 512 bytes
// (such chunks are kept for reuse, see free_arena), or the estimate beyond 64 KiB.
std::size_t arena_chunk_size(std::size_t bytes) noexcept;

// Builds payloads into an arena: a bump allocator over one chunk, chaining further chunks when
// the estimate was short. The arena is created on the first allocation.
class arena_builder {
  public:
    explicit arena_builder(std::size_t first_chunk) noexcept : first_(first_chunk) {}
    arena_builder(const arena_builder&) = delete;
    arena_builder& operator=(const arena_builder&) = delete;
    ~arena_builder() {
        if (arena_) free_arena(arena_);
    }

    template <typename N, typename... A>
    N* make(std::size_t bytes, A&&... args) {
        bytes = (bytes + 7) & ~std::size_t(7);
        if (std::size_t(end_ - p_) < bytes) [[unlikely]]
            grow(bytes);
        char* at = p_;
        p_ += bytes;
        N* n = ::new (at) N(std::forward<A>(args)...);
        n->refs.store(std::uint32_t(at - chunk_), std::memory_order_relaxed);
        n->in_arena = 1;
        return n;
    }
    arena* get() const noexcept { return arena_; }
    // Hands the arena over (to the term that holds the decoded message).
    arena* release() noexcept { return std::exchange(arena_, nullptr); }

  private:
    void grow(std::size_t bytes);

    std::size_t first_;
    arena* arena_ = nullptr;
    char* chunk_ = nullptr;
    char* p_ = nullptr;
    char* end_ = nullptr;
    std::size_t last_size_ = 0;
};

// A payload alone on the heap, with its exact size.
template <typename N, typename... A>
N* heap_make(std::size_t bytes, A&&... args) {
    void* at = ::operator new(bytes);
    return ::new (at) N(std::forward<A>(args)...);
}
template <typename N>
N* heap_make() {
    return heap_make<N>(sizeof(N));
}

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
    // Construct a term in raw storage (a decoder's slot), without releasing what was there.
    static void put_small(term* s, std::int64_t v) noexcept {
        term* t = ::new (s) term();
        t->tag_ = term_tag::small;
        t->u_.i = v;
    }
    static void put_float(term* s, double v) noexcept {
        term* t = ::new (s) term();
        t->tag_ = term_tag::flt;
        t->u_.f = v;
    }
    static void put_atom(term* s, std::uint32_t index) noexcept {
        term* t = ::new (s) term();
        t->tag_ = term_tag::atom;
        t->u_.atom = index;
    }
    static void put_nil(term* s) noexcept { ::new (s) term(); }
    static void put_node(term* s, term_node* n) noexcept {
        term* t = ::new (s) term();
        t->tag_ = n->tag;
        t->u_.node = n;
    }
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
    if (!heap()) return;
    detail::term_node* n = u_.node;
    if (n->in_arena)
        detail::arena_of(n)->refs.fetch_add(1, std::memory_order_relaxed);
    else
        n->refs.fetch_add(1, std::memory_order_relaxed);
}
} // namespace erl
