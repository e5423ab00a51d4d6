// Pattern matching on terms: Erlang patterns with `_`, named variables and bindings.
#pragma once

#include <concepts>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <erl/term.hpp>

namespace erl {

// A pattern, as on the left of Erlang's `=` or in a `receive` clause: literals (compared with
// =:=, as Erlang patterns do), the wildcard `_`, variables (`Key`, `_Ignored`: a variable that
// appears twice must match =:= terms both times), tuples, lists with an optional `| Tail`,
// and maps, which match any map holding at least the given (literal) keys. Binary patterns are
// literal binaries only (no segment matching).
//
// Patterns are immutable and cheap to copy; build them once (e.g. as statics of a receive
// handler) and match many messages against them.
class pattern {
  public:
    // A literal: anything a term can be made from.
    template <typename T>
    requires std::constructible_from<term, T&&> &&
        (!std::same_as<std::remove_cvref_t<T>, pattern>)pattern(T&& literal)
        : pattern(term(std::forward<T>(literal))) {} // NOLINT
    pattern(term literal);                           // NOLINT

    static pattern any(); // _
    static pattern var(std::string name);
    static pattern tuple(std::vector<pattern> elements);
    static pattern list(std::vector<pattern> elements, std::optional<pattern> tail = std::nullopt);
    static pattern map(std::vector<std::pair<term, pattern>> entries);
    // Erlang pattern text: "{put, Key, _}", "[H | T]", "#{name := N}", "{ok, #{id => 1}}".
    // Throws erl::term_parse_error.
    static pattern parse(std::string_view text);

    // Names of the variables, in order of first appearance.
    std::vector<std::string> variables() const;
    // The term, if the pattern has no variables or wildcards; else bad_term_access.
    term to_term() const;
    std::string to_string() const;

    struct node;
    const node& root() const noexcept { return *n_; }

  private:
    explicit pattern(std::shared_ptr<const node> n) : n_(std::move(n)) {}
    std::shared_ptr<const node> n_;
};

struct pattern::node {
    enum class kind : std::uint8_t { literal, any, var, tuple, list, map } k;
    term literal;                             // literal
    std::string name;                         // var
    std::vector<pattern> elems;               // tuple, list (list: the tail is last if has_tail)
    bool has_tail = false;                    // list
    std::vector<std::pair<term, pattern>> kv; // map
};

// Variable bindings of a successful match.
class bindings {
  public:
    // The bound term; throws std::out_of_range for a name the pattern did not bind.
    const term& operator[](std::string_view name) const;
    const term* find(std::string_view name) const noexcept;
    // The bound term converted with erl::from_term<T> (include <erl/term_convert.hpp>).
    template <typename T>
    T get(std::string_view name) const;
    std::size_t size() const noexcept { return vars_.size(); }
    bool empty() const noexcept { return vars_.empty(); }
    auto begin() const noexcept { return vars_.begin(); }
    auto end() const noexcept { return vars_.end(); }

    // Binds `name` to `value`, or checks =:= against an existing binding.
    bool bind(std::string_view name, const term& value);

  private:
    std::vector<std::pair<std::string, term>> vars_;
};

// Matches `t` against `p`: the bindings on success, nullopt otherwise.
std::optional<bindings> match(const term& t, const pattern& p);
// Whether `t` matches `p`, without building bindings.
bool matches(const term& t, const pattern& p);

// Shorthands for building patterns in code: pat::tuple(atom("put"), pat::var("K"), pat::_).
namespace pat {
inline const pattern& any() {
    static const pattern p = pattern::any();
    return p;
}
inline const pattern _ = pattern::any(); // NOLINT: Erlang's spelling
inline pattern var(std::string name) {
    return pattern::var(std::move(name));
}
template <typename... Ps>
pattern tuple(Ps&&... elems) {
    return pattern::tuple(std::vector<pattern>{pattern(std::forward<Ps>(elems))...});
}
template <typename... Ps>
pattern list(Ps&&... elems) {
    return pattern::list(std::vector<pattern>{pattern(std::forward<Ps>(elems))...});
}
// [E1, ..., En | Tail]
inline pattern cons(std::vector<pattern> elems, pattern tail) {
    return pattern::list(std::move(elems), std::move(tail));
}
inline pattern map(std::initializer_list<std::pair<term, pattern>> kv) {
    return pattern::map(std::vector<std::pair<term, pattern>>(kv));
}
} // namespace pat

} // namespace erl

template <>
struct fmt::formatter<erl::pattern> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::pattern& p, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::formatter<std::string_view>::format(p.to_string(), ctx);
    }
};
