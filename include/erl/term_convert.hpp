// erl::to_term / erl::from_term<T>: between C++ values and Erlang terms.
#pragma once

#include <concepts>
#include <cstdint>
#include <limits>
#include <list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <erl/exit_reason.hpp>
#include <erl/term.hpp>
#include <erl/term_match.hpp>

namespace erl {

// from_term found a term of the wrong shape. `path()` locates it inside the converted term:
// `$` is the root, `{2}` the 2nd tuple element (1-based, like element/2), `[3]` the list
// element at index 3 (0-based), `#{key}` a map value, `.name` a struct field; `expected()`
// names what was wanted. what(): "erl::from_term: at ${2}.name: expected binary, got 42".
class term_conversion_error : public std::runtime_error {
  public:
    term_conversion_error(std::string path, std::string expected, const term& got);
    const std::string& path() const noexcept { return path_; }
    const std::string& expected() const noexcept { return expected_; }

  private:
    std::string path_, expected_;
};

// Where a conversion is, as a chain of frames on the C++ stack (built only if it fails).
struct term_path {
    enum class step : std::uint8_t { root, tuple, list, map, field, alternative } kind = step::root;
    const term_path* parent = nullptr;
    std::size_t index = 0;
    const term* key = nullptr;
    std::string_view field;
    std::string to_string() const;
};

// A user struct becomes a map with atom keys (#{x => 1, y => 2}), or a record-like tuple
// {Tag, X, Y} when the trait also names a `record` tag. One line per field:
//
//   struct point { int x; int y; };
//   template <> struct erl::term_struct<point> {
//       static constexpr auto fields = std::make_tuple(erl::field("x", &point::x),
//                                                      erl::field("y", &point::y));
//       // static constexpr std::string_view record = "point"; // for {point, X, Y}
//   };
template <typename T>
struct term_struct;

template <typename C, typename M>
struct field_desc {
    std::string_view name;
    M C::*member;
};
template <typename C, typename M>
constexpr field_desc<C, M> field(std::string_view name, M C::*member) {
    return {name, member};
}

// The conversion of one C++ type; specialize it for a type that needs custom handling:
//   static term to(const T&);
//   static T from(const term&, const term_path&);   // throws term_conversion_error
template <typename T, typename = void>
struct term_converter;

template <typename T>
concept term_convertible = requires(const T& v, const term& t, const term_path& p) {
    { term_converter<T>::to(v) } -> std::same_as<term>;
    { term_converter<T>::from(t, p) } -> std::same_as<T>;
};

template <typename T>
term to_term(const T& v) {
    return term_converter<std::remove_cvref_t<T>>::to(v);
}
// Throws term_conversion_error on a mismatch.
template <typename T>
T from_term(const term& t) {
    term_path root;
    return term_converter<T>::from(t, root);
}
// nullopt instead of an exception.
template <typename T>
std::optional<T> try_from_term(const term& t) {
    try {
        return from_term<T>(t);
    } catch (const term_conversion_error&) {
        return std::nullopt;
    }
}

template <typename T>
T bindings::get(std::string_view name) const {
    return from_term<T>((*this)[name]);
}

namespace detail {
[[noreturn]] void conversion_failed(const term_path& p, std::string_view expected, const term& got);
template <typename T>
T convert_at(const term& t, const term_path& parent, term_path::step s, std::size_t i,
             const term* key = nullptr, std::string_view field = {}) {
    term_path p{s, &parent, i, key, field};
    return term_converter<T>::from(t, p);
}
template <typename T>
inline constexpr bool is_struct = requires {
    term_struct<T>::fields;
};
template <typename T>
inline constexpr bool is_optional = false;
template <typename T>
inline constexpr bool is_optional<std::optional<T>> = true;
template <typename T>
inline constexpr bool is_record = requires {
    term_struct<T>::record;
};
} // namespace detail

// ---- built-in conversions ----

template <>
struct term_converter<term> {
    static term to(const term& t) { return t; }
    static term from(const term& t, const term_path&) { return t; }
};

template <std::integral I>
requires(!std::same_as<I, bool>) struct term_converter<I> {
    static term to(I v) {
        if constexpr (std::same_as<I, char>)
            return term(std::int64_t(v));
        else
            return term(v);
    }
    static I from(const term& t, const term_path& p) {
        if (t.is_small_int()) {
            std::int64_t v = t.as_int64();
            if constexpr (std::is_unsigned_v<I>) {
                if (v >= 0 && std::uint64_t(v) <= std::numeric_limits<I>::max()) return I(v);
            } else {
                if (v >= std::numeric_limits<I>::min() && v <= std::numeric_limits<I>::max())
                    return I(v);
            }
        } else if constexpr (std::is_unsigned_v<I> && sizeof(I) == 8) {
            if (t.is_integer()) {
                bigint b = t.as_bigint();
                if (!b.negative() && b.limbs().size() <= 2)
                    return I((std::uint64_t(b.limbs().size() > 1 ? b.limbs()[1] : 0) << 32) |
                             b.limbs()[0]);
            }
        }
        detail::conversion_failed(p, range_name(), t);
    }
    static std::string range_name() {
        return fmt::format("integer in {}..{}", +std::numeric_limits<I>::min(),
                           +std::numeric_limits<I>::max());
    }
};

template <std::floating_point F>
struct term_converter<F> {
    static term to(F v) { return term(double(v)); }
    static F from(const term& t, const term_path& p) {
        if (t.is_number()) return F(to_double(t)); // integers convert, as in Erlang arithmetic
        detail::conversion_failed(p, "number", t);
    }
};

template <>
struct term_converter<bool> {
    static term to(bool b) { return term(b); }
    static bool from(const term& t, const term_path& p) {
        if (t.is_bool()) return t.as_bool();
        detail::conversion_failed(p, "boolean (true or false)", t);
    }
};

template <>
struct term_converter<atom> {
    static term to(atom a) { return term(a); }
    static atom from(const term& t, const term_path& p) {
        if (t.is_atom()) return t.as_atom();
        detail::conversion_failed(p, "atom", t);
    }
};

// std::string: to a binary; from a binary or an Erlang string (list of code points, as UTF-8).
template <>
struct term_converter<std::string> {
    static term to(const std::string& s) { return term(std::string_view(s)); }
    static std::string from(const term& t, const term_path& p);
};

// C string literals: to_term("text") is a binary (from_term has no owner to give back).
template <std::size_t N>
struct term_converter<char[N]> {
    static term to(const char* s) { return term(s); }
};
template <>
struct term_converter<const char*> {
    static term to(const char* s) { return term(s); }
};

// A view into the binary's bytes: valid while the term (or a copy of it) lives.
template <>
struct term_converter<std::string_view> {
    static term to(std::string_view s) { return term(s); }
    static std::string_view from(const term& t, const term_path& p) {
        if (t.is_binary()) return t.as_string_view();
        detail::conversion_failed(p, "binary", t);
    }
};

template <>
struct term_converter<erl::pid> {
    static term to(const erl::pid& v) { return term(v); }
    static erl::pid from(const term& t, const term_path& p) {
        if (t.is_pid()) return t.as_pid();
        detail::conversion_failed(p, "pid", t);
    }
};

template <>
struct term_converter<erl::ref> {
    static term to(const erl::ref& v) { return term(v); }
    static erl::ref from(const term& t, const term_path& p) {
        if (t.is_ref()) return t.as_ref();
        detail::conversion_failed(p, "reference", t);
    }
};

// exit_reason: an atom, {Tag, Detail} with Detail a binary, {exception, Type, What} with both
// binaries. From a term: an atom; {Tag, Detail} with any Detail (binaries and strings become
// the detail text, other terms their Erlang text); anything else becomes {error, Text}.
template <>
struct term_converter<exit_reason> {
    static term to(const exit_reason& r);
    static exit_reason from(const term& t, const term_path& p);
};

template <typename T>
requires term_convertible<T>
struct term_converter<std::optional<T>> {
    // nullopt is the atom undefined, as in Erlang APIs.
    static term to(const std::optional<T>& v) { return v ? to_term(*v) : term(atoms::undefined); }
    static std::optional<T> from(const term& t, const term_path& p) {
        if (t.is_atom(atoms::undefined)) return std::nullopt;
        return term_converter<T>::from(t, p);
    }
};

template <typename Seq, typename T>
struct term_seq_converter {
    static term to(const Seq& v) {
        std::vector<term> out;
        out.reserve(v.size());
        for (const auto& e : v)
            out.push_back(to_term(e));
        return term::list_from(std::move(out));
    }
    static Seq from(const term& t, const term_path& p) {
        if (!t.is_proper_list()) detail::conversion_failed(p, "proper list", t);
        Seq out;
        std::size_t i = 0;
        for (const auto& e : t.elements())
            out.push_back(detail::convert_at<T>(e, p, term_path::step::list, i++));
        return out;
    }
};
template <typename T, typename A>
requires term_convertible<T>
struct term_converter<std::vector<T, A>> : term_seq_converter<std::vector<T, A>, T> {
};
template <typename T, typename A>
requires term_convertible<T>
struct term_converter<std::list<T, A>> : term_seq_converter<std::list<T, A>, T> {
};

template <typename Map, typename K, typename V>
struct term_map_converter {
    static term to(const Map& m) {
        std::vector<std::pair<term, term>> out;
        out.reserve(m.size());
        for (const auto& [k, v] : m)
            out.emplace_back(to_term(k), to_term(v));
        return term::map_from(std::move(out));
    }
    static Map from(const term& t, const term_path& p) {
        if (!t.is_map()) detail::conversion_failed(p, "map", t);
        Map out;
        for (const auto& [k, v] : t.map_entries()) {
            // A key that fails to convert is reported at the key's own path.
            K key = detail::convert_at<K>(k, p, term_path::step::map, 0, &k, "key");
            out.emplace(std::move(key), detail::convert_at<V>(v, p, term_path::step::map, 0, &k));
        }
        return out;
    }
};
template <typename K, typename V, typename C, typename A>
requires term_convertible<K> && term_convertible<V>
struct term_converter<std::map<K, V, C, A>> : term_map_converter<std::map<K, V, C, A>, K, V> {
};
template <typename K, typename V, typename H, typename E, typename A>
requires term_convertible<K> && term_convertible<V>
struct term_converter<std::unordered_map<K, V, H, E, A>>
    : term_map_converter<std::unordered_map<K, V, H, E, A>, K, V> {
};

template <typename... Ts>
requires(term_convertible<Ts>&&...) struct term_converter<std::tuple<Ts...>> {
    static term to(const std::tuple<Ts...>& v) {
        return std::apply([](const auto&... e) { return tuple(to_term(e)...); }, v);
    }
    static std::tuple<Ts...> from(const term& t, const term_path& p) {
        if (!t.is_tuple(sizeof...(Ts)))
            detail::conversion_failed(p, fmt::format("tuple of {} elements", sizeof...(Ts)), t);
        auto e = t.elements();
        return [&]<std::size_t... I>(std::index_sequence<I...>) {
            return std::tuple<Ts...>{
                detail::convert_at<Ts>(e[I], p, term_path::step::tuple, I + 1)...};
        }
        (std::index_sequence_for<Ts...>{});
    }
};

template <typename A, typename B>
requires term_convertible<A> && term_convertible<B>
struct term_converter<std::pair<A, B>> {
    static term to(const std::pair<A, B>& v) { return tuple(to_term(v.first), to_term(v.second)); }
    static std::pair<A, B> from(const term& t, const term_path& p) {
        auto [a, b] = term_converter<std::tuple<A, B>>::from(t, p);
        return {std::move(a), std::move(b)};
    }
};

// The first alternative that converts wins.
template <typename... Ts>
requires(term_convertible<Ts>&&...) struct term_converter<std::variant<Ts...>> {
    static term to(const std::variant<Ts...>& v) {
        return std::visit([](const auto& x) { return to_term(x); }, v);
    }
    static std::variant<Ts...> from(const term& t, const term_path& p) {
        std::optional<std::variant<Ts...>> out;
        (try_one<Ts>(t, p, out) || ...);
        if (!out) detail::conversion_failed(p, "one of the variant's alternatives", t);
        return std::move(*out);
    }
    template <typename T>
    static bool try_one(const term& t, const term_path& p,
                        std::optional<std::variant<Ts...>>& out) {
        try {
            out.emplace(std::in_place_type<T>, term_converter<T>::from(t, p));
            return true;
        } catch (const term_conversion_error&) {
            return false;
        }
    }
};

template <>
struct term_converter<std::monostate> {
    static term to(std::monostate) { return term(atoms::undefined); }
    static std::monostate from(const term& t, const term_path& p) {
        if (t.is_atom(atoms::undefined)) return {};
        detail::conversion_failed(p, "undefined", t);
    }
};

// User structs described by term_struct<T>.
template <typename T>
requires detail::is_struct<T>
struct term_converter<T> {
    static term to(const T& v) {
        const auto& fields = term_struct<T>::fields;
        if constexpr (detail::is_record<T>) {
            std::vector<term> elems;
            elems.push_back(term::make_atom(term_struct<T>::record));
            std::apply([&](const auto&... f) { (elems.push_back(to_term(v.*(f.member))), ...); },
                       fields);
            return term::tuple_from(std::move(elems));
        } else {
            std::vector<std::pair<term, term>> kv;
            std::apply(
                [&](const auto&... f) {
                    (kv.emplace_back(term::make_atom(f.name), to_term(v.*(f.member))), ...);
                },
                fields);
            return term::map_from(std::move(kv));
        }
    }
    static T from(const term& t, const term_path& p) {
        const auto& fields = term_struct<T>::fields;
        T out{};
        if constexpr (detail::is_record<T>) {
            constexpr std::size_t n = std::tuple_size_v<std::remove_cvref_t<decltype(fields)>>;
            if (!t.is_tuple(n + 1) || !t[0].is_atom() || t[0].atom_name() != term_struct<T>::record)
                detail::conversion_failed(
                    p, fmt::format("{{{}, ...}} record of {} fields", term_struct<T>::record, n),
                    t);
            std::size_t i = 1;
            std::apply(
                [&](const auto&... f) {
                    ((out.*(f.member) =
                          detail::convert_at<std::remove_cvref_t<decltype(out.*(f.member))>>(
                              t[i], p, term_path::step::field, i, nullptr, f.name),
                      ++i),
                     ...);
                },
                fields);
        } else {
            if (!t.is_map()) detail::conversion_failed(p, "map", t);
            std::apply(
                [&](const auto&... f) {
                    ((out.*(f.member) =
                          from_field<std::remove_cvref_t<decltype(out.*(f.member))>>(t, p, f.name)),
                     ...);
                },
                fields);
        }
        return out;
    }
    template <typename M>
    static M from_field(const term& t, const term_path& p, std::string_view name) {
        const term* v = t.find(term::make_atom(name));
        if (!v) {
            if constexpr (detail::is_optional<M>)
                return std::nullopt; // an optional field may be absent
            else {
                term_path fp{term_path::step::field, &p, 0, nullptr, name};
                detail::conversion_failed(fp, "a value (the key is missing)", t);
            }
        }
        return detail::convert_at<M>(*v, p, term_path::step::field, 0, nullptr, name);
    }
};

} // namespace erl
