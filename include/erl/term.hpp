// erl::term — any Erlang value, with cheap copies, Erlang's equalities and order, and printing.
#pragma once

#include <array>
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <erl/atom.hpp>
#include <erl/bigint.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>

namespace erl {

// The kinds of terms, declared in Erlang's term order: number < atom < reference < fun < port <
// pid < tuple < map < nil < list < bitstring. Integers and floats are both numbers.
enum class term_kind : std::uint8_t {
    integer,
    float_,
    atom,
    reference,
    fun,
    port,
    pid,
    tuple,
    map,
    nil,
    list,
    bitstring, // binaries are the bitstrings whose size is a multiple of 8
};
std::string_view to_string(term_kind k) noexcept;

namespace detail {
struct term_node;
struct term_access;
enum class term_tag : std::uint8_t {
    small,     // int64 inline
    big,       // bigint outside the int64 range
    flt,       // double inline
    atom,      // interned erl::atom inline
    atom_text, // an atom kept out of the atom table (see docs/terms.md, "atoms from the network")
    ref,
    export_fun,
    local_fun,
    port,
    pid,
    tuple,
    map,
    nil,
    list,
    bits,
};
} // namespace detail

class term;
// Thrown by accessors asked for the wrong kind (as_int64() on an atom, ...).
class bad_term_access : public std::logic_error {
  public:
    using std::logic_error::logic_error;
};

// A value that is any Erlang term. Scalars (small integers, floats, interned atoms, []) live
// inline; everything else sits in an immutable, reference-counted payload, so copying a term
// is O(1) and copies may be shared across threads freely. A default term is [] (nil).
//
// `==` on terms is Erlang's exact equality `=:=` (1 =/= 1.0), consistent with `<=>` (Erlang's
// term order, with integers before floats of equal value) and std::hash: terms are safe keys
// for std::map and std::unordered_map. Erlang's arithmetic equality `==` and its `<` (where
// 1 == 1.0) are erl::equal() and erl::compare().
class term {
  public:
    term() noexcept : tag_(detail::term_tag::nil) { u_.i = 0; }
    term(const term& o) noexcept : tag_(o.tag_), u_(o.u_) { retain(); }
    term(term&& o) noexcept : tag_(o.tag_), u_(o.u_) { o.tag_ = detail::term_tag::nil; }
    term& operator=(const term& o) noexcept {
        term tmp(o);
        swap(tmp);
        return *this;
    }
    term& operator=(term&& o) noexcept {
        term tmp(std::move(o));
        swap(tmp);
        return *this;
    }
    ~term() {
        if (heap()) release();
    }
    void swap(term& o) noexcept {
        std::swap(tag_, o.tag_);
        std::swap(u_, o.u_);
    }

    // Integers of every width (unsigned 64-bit values above INT64_MAX become bignums).
    template <std::integral I>
    requires(!std::same_as<I, bool> && !std::same_as<I, char>) term(I v)
        : tag_(detail::term_tag::nil), u_{} { // NOLINT: numbers are terms
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (v > std::uint64_t(INT64_MAX)) {
                *this = term(bigint::from_uint64(v));
                return;
            }
        }
        tag_ = detail::term_tag::small;
        u_.i = std::int64_t(v);
    }
    term(bigint v); // NOLINT: normalised to the int64 fast path when it fits
    // Finite doubles only: Erlang has no NaN or infinity (throws std::invalid_argument).
    term(double v);                    // NOLINT
    term(float v) : term(double(v)) {} // NOLINT
    // Exactly bool (not anything convertible to it): the atoms true and false.
    template <std::same_as<bool> B>
    term(B b) noexcept : term(b ? atoms::true_ : atoms::false_) {}                // NOLINT
    term(atom a) noexcept : tag_(detail::term_tag::atom) { u_.atom = a.index(); } // NOLINT
    // C++ text becomes a binary (the Erlang idiom for strings in protocols); use
    // erl::charlist() for an Erlang string (list of code points).
    term(std::string_view s);                                 // NOLINT
    term(const std::string& s) : term(std::string_view(s)) {} // NOLINT
    term(const char* s) : term(std::string_view(s)) {}        // NOLINT
    term(const pid& p);                                       // NOLINT
    term(const ref& r);                                       // NOLINT

    // ---- factories for what has no natural C++ counterpart ----
    static term binary(std::span<const std::uint8_t> bytes);
    static term binary(std::vector<std::uint8_t>&& bytes);
    // A bitstring of bit_size bits, taken from the first bytes (most significant bit first);
    // unused low bits of the last byte are cleared. Throws if bytes are too few.
    static term bitstring(std::span<const std::uint8_t> bytes, std::size_t bit_size);
    // An atom by name. Names up to 255 bytes are interned; longer ones (Erlang allows 255
    // *characters*, so up to 1020 UTF-8 bytes) are kept as atom text.
    static term make_atom(std::string_view name);
    // Throws std::invalid_argument on more than 255 characters or invalid UTF-8.
    static term tuple_from(std::vector<term> elements);
    static term list_from(std::vector<term> elements, term tail = term());
    // Duplicate keys (by =:=): the last one wins, as in Erlang's maps:from_list/1.
    static term map_from(std::vector<std::pair<term, term>> entries);
    static term pid(atom node, std::uint32_t id, std::uint32_t serial, std::uint32_t creation);
    static term port(atom node, std::uint64_t id, std::uint32_t creation);
    // 1 to 5 words, as NEWER_REFERENCE_EXT allows.
    static term reference(atom node, std::uint32_t creation, std::span<const std::uint32_t> words);
    // `fun Module:Function/Arity`.
    static term export_fun(atom module, atom function, std::uint8_t arity);

    // Parses Erlang literal text: numbers (incl. 16#FF, $c, 1_000), atoms, "strings", <<...>>,
    // tuples, lists (incl. improper), maps, `fun m:f/a`. A trailing '.' is allowed. Throws
    // erl::term_parse_error with the offending offset.
    static term parse(std::string_view text);

    // ---- kind tests ----
    term_kind kind() const noexcept;
    bool is_integer() const noexcept {
        return tag_ == detail::term_tag::small || tag_ == detail::term_tag::big;
    }
    bool is_small_int() const noexcept { return tag_ == detail::term_tag::small; }
    bool is_float() const noexcept { return tag_ == detail::term_tag::flt; }
    bool is_number() const noexcept { return is_integer() || is_float(); }
    bool is_atom() const noexcept {
        return tag_ == detail::term_tag::atom || tag_ == detail::term_tag::atom_text;
    }
    bool is_atom(atom a) const noexcept;
    bool is_bool() const noexcept { return is_atom(atoms::true_) || is_atom(atoms::false_); }
    bool is_tuple() const noexcept { return tag_ == detail::term_tag::tuple; }
    bool is_tuple(std::size_t arity) const noexcept { return is_tuple() && size() == arity; }
    // {Tag, ...} with an atom first element: the shape of tagged messages and records.
    bool is_tagged_tuple(atom tag, std::size_t arity) const noexcept;
    bool is_nil() const noexcept { return tag_ == detail::term_tag::nil; }
    bool is_cons() const noexcept { return tag_ == detail::term_tag::list; }
    bool is_list() const noexcept { return is_nil() || is_cons(); } // like is_list/1
    bool is_proper_list() const noexcept;
    bool is_map() const noexcept { return tag_ == detail::term_tag::map; }
    bool is_bitstring() const noexcept { return tag_ == detail::term_tag::bits; }
    bool is_binary() const noexcept; // a bitstring of whole bytes
    bool is_pid() const noexcept { return tag_ == detail::term_tag::pid; }
    bool is_port() const noexcept { return tag_ == detail::term_tag::port; }
    bool is_ref() const noexcept { return tag_ == detail::term_tag::ref; }
    bool is_fun() const noexcept {
        return tag_ == detail::term_tag::export_fun || tag_ == detail::term_tag::local_fun;
    }
    bool is_export_fun() const noexcept { return tag_ == detail::term_tag::export_fun; }

    // ---- accessors: throw erl::bad_term_access on the wrong kind ----
    std::int64_t as_int64() const; // also throws for integers outside int64
    bigint as_bigint() const;      // any integer
    double as_double() const;      // floats only (see erl::to_double for any number)
    bool as_bool() const;
    // The atom, interning it if it was kept out of the table (an explicit, local decision).
    atom as_atom() const;
    std::string_view atom_name() const; // no interning
    erl::pid as_pid() const;
    // Any reference (1 to 5 words); its node atom is interned.
    erl::ref as_ref() const;
    // Bytes of a binary or bitstring (the last one partial for bitstrings).
    std::span<const std::uint8_t> bytes() const;
    std::string_view as_string_view() const; // binary bytes as text
    std::size_t bit_size() const;
    // Elements of a tuple, or of a list (without its tail); nil has none.
    std::span<const term> elements() const;
    // Tuple arity, list length (without tail), map size, binary byte size.
    std::size_t size() const;
    // Tuple element or list element, 0-based, bounds-checked (std::out_of_range).
    const term& operator[](std::size_t i) const;
    const term& tail() const;                                   // [] for proper lists and nil
    std::span<const std::pair<term, term>> map_entries() const; // sorted by key (term order)
    // The value under an exactly equal key, or nullptr.
    const term* find(const term& key) const;

    // node/id/serial/creation of pids, ports and references.
    std::string_view node_name() const;
    term node() const;              // the node atom as a term
    std::uint64_t id() const;       // pid ID or port ID
    std::uint32_t serial() const;   // pid only
    std::uint32_t creation() const; // pid, port, ref
    std::span<const std::uint32_t> ref_words() const;
    // Funs: module, function name (exports; local funs give '-fun-'), arity.
    std::string_view fun_module() const;
    std::string_view fun_name() const;
    unsigned fun_arity() const;

    // Erlang syntax, as fmt prints it.
    std::string to_string() const;
    std::size_t hash() const noexcept;

    friend bool operator==(const term& a, const term& b) noexcept; // =:=
    friend std::strong_ordering operator<=>(const term& a, const term& b) noexcept;

  private:
    friend struct detail::term_access;
    explicit term(detail::term_node* n) noexcept; // takes ownership of one reference
    void retain() const noexcept;
    void release() noexcept;
    bool heap() const noexcept {
        return tag_ != detail::term_tag::small && tag_ != detail::term_tag::flt &&
               tag_ != detail::term_tag::atom && tag_ != detail::term_tag::nil;
    }

    detail::term_tag tag_;
    union value {
        std::int64_t i;
        double f;
        std::uint32_t atom;
        detail::term_node* node;
    } u_;
};

// Erlang's `==`: like =:= except that an integer and a float of the same value are equal.
bool equal(const term& a, const term& b) noexcept;
inline bool exactly_equal(const term& a, const term& b) noexcept {
    return a == b;
}
// Erlang's `<`/`>` order, where 1 and 1.0 are equivalent.
std::weak_ordering compare(const term& a, const term& b) noexcept;
// A number as a double (integers converted), or bad_term_access.
double to_double(const term& t);

// ---- natural construction ----
template <typename... Ts>
term tuple(Ts&&... elems) {
    std::vector<term> v;
    v.reserve(sizeof...(Ts));
    (v.emplace_back(std::forward<Ts>(elems)), ...);
    return term::tuple_from(std::move(v));
}
template <typename... Ts>
term list(Ts&&... elems) {
    std::vector<term> v;
    v.reserve(sizeof...(Ts));
    (v.emplace_back(std::forward<Ts>(elems)), ...);
    return term::list_from(std::move(v));
}
// [E1, ..., En | Tail]
term improper_list(std::vector<term> elements, term tail);
// An Erlang string: the list of the Unicode code points of UTF-8 text (throws on bad UTF-8).
term charlist(std::string_view utf8);
// Builds a map term: erl::map{{atom("a"), 1}, {atom("b"), 2}}.
class map {
  public:
    map(std::initializer_list<std::pair<term, term>> entries) : entries_(entries) {}
    explicit map(std::vector<std::pair<term, term>> entries) : entries_(std::move(entries)) {}
    operator term() const& { return term::map_from(entries_); }        // NOLINT
    operator term() && { return term::map_from(std::move(entries_)); } // NOLINT

  private:
    std::vector<std::pair<term, term>> entries_;
};

// Erlang source text of a term was malformed.
class term_parse_error : public std::runtime_error {
  public:
    term_parse_error(std::size_t offset, const std::string& what);
    std::size_t offset() const noexcept { return offset_; }

  private:
    std::size_t offset_;
};

} // namespace erl

template <>
struct std::hash<erl::term> {
    std::size_t operator()(const erl::term& t) const noexcept { return t.hash(); }
};

template <>
struct fmt::formatter<erl::term> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::term& t, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::formatter<std::string_view>::format(t.to_string(), ctx);
    }
};

#include <erl/detail/term_nodes.hpp>
