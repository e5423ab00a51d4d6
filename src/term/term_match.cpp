#include <erl/term_match.hpp>

#include <stdexcept>

namespace erl {

using kind = pattern::node::kind;

pattern::pattern(term literal) {
    auto n = std::make_shared<node>();
    n->k = kind::literal;
    n->literal = std::move(literal);
    n_ = std::move(n);
}

pattern pattern::any() {
    static const auto n = [] {
        auto p = std::make_shared<node>();
        p->k = kind::any;
        return std::shared_ptr<const node>(std::move(p));
    }();
    return pattern(n);
}

pattern pattern::var(std::string name) {
    if (name == "_") return any();
    auto n = std::make_shared<node>();
    n->k = kind::var;
    n->name = std::move(name);
    return pattern(std::shared_ptr<const node>(std::move(n)));
}

namespace {
bool all_literal(const std::vector<pattern>& v) {
    for (const auto& p : v)
        if (p.root().k != kind::literal) return false;
    return true;
}
} // namespace

pattern pattern::tuple(std::vector<pattern> elements) {
    // A tuple of literals is a literal: matched with one =:= comparison.
    if (all_literal(elements)) {
        std::vector<term> v;
        v.reserve(elements.size());
        for (const auto& e : elements)
            v.push_back(e.root().literal);
        return pattern(term::tuple_from(std::move(v)));
    }
    auto n = std::make_shared<node>();
    n->k = kind::tuple;
    n->elems = std::move(elements);
    return pattern(std::shared_ptr<const node>(std::move(n)));
}

pattern pattern::list(std::vector<pattern> elements, std::optional<pattern> tail) {
    if (all_literal(elements) && (!tail || tail->root().k == kind::literal)) {
        std::vector<term> v;
        v.reserve(elements.size());
        for (const auto& e : elements)
            v.push_back(e.root().literal);
        return pattern(term::list_from(std::move(v), tail ? tail->root().literal : term()));
    }
    auto n = std::make_shared<node>();
    n->k = kind::list;
    n->elems = std::move(elements);
    if (tail) {
        n->elems.push_back(std::move(*tail));
        n->has_tail = true;
    }
    return pattern(std::shared_ptr<const node>(std::move(n)));
}

pattern pattern::map(std::vector<std::pair<term, pattern>> entries) {
    auto n = std::make_shared<node>();
    n->k = kind::map;
    n->kv = std::move(entries);
    return pattern(std::shared_ptr<const node>(std::move(n)));
}

namespace {

void collect_vars(const pattern::node& n, std::vector<std::string>& out) {
    switch (n.k) {
    case kind::var:
        for (const auto& v : out)
            if (v == n.name) return;
        out.push_back(n.name);
        return;
    case kind::tuple:
    case kind::list:
        for (const auto& e : n.elems)
            collect_vars(e.root(), out);
        return;
    case kind::map:
        for (const auto& kv : n.kv)
            collect_vars(kv.second.root(), out);
        return;
    default:
        return;
    }
}

void write(std::string& out, const pattern::node& n) {
    switch (n.k) {
    case kind::literal:
        out += n.literal.to_string();
        return;
    case kind::any:
        out += "_";
        return;
    case kind::var:
        out += n.name;
        return;
    case kind::tuple:
    case kind::list: {
        bool tuple = n.k == kind::tuple;
        out.push_back(tuple ? '{' : '[');
        std::size_t count = n.elems.size() - (n.has_tail ? 1 : 0);
        for (std::size_t i = 0; i < count; ++i) {
            if (i) out.push_back(',');
            write(out, n.elems[i].root());
        }
        if (n.has_tail) {
            out.push_back('|');
            write(out, n.elems.back().root());
        }
        out.push_back(tuple ? '}' : ']');
        return;
    }
    case kind::map: {
        out += "#{";
        bool first = true;
        for (const auto& [k, v] : n.kv) {
            if (!first) out.push_back(',');
            first = false;
            out += k.to_string();
            out += " := ";
            write(out, v.root());
        }
        out.push_back('}');
        return;
    }
    }
}

term to_term_of(const pattern::node& n) {
    switch (n.k) {
    case kind::literal:
        return n.literal;
    case kind::tuple: {
        std::vector<term> v;
        for (const auto& e : n.elems)
            v.push_back(to_term_of(e.root()));
        return term::tuple_from(std::move(v));
    }
    case kind::list: {
        std::vector<term> v;
        std::size_t count = n.elems.size() - (n.has_tail ? 1 : 0);
        for (std::size_t i = 0; i < count; ++i)
            v.push_back(to_term_of(n.elems[i].root()));
        return term::list_from(std::move(v),
                               n.has_tail ? to_term_of(n.elems.back().root()) : term());
    }
    case kind::map: {
        std::vector<std::pair<term, term>> v;
        for (const auto& [k, p] : n.kv)
            v.emplace_back(k, to_term_of(p.root()));
        return term::map_from(std::move(v));
    }
    default:
        throw bad_term_access("erl::pattern: a pattern with variables is not a term");
    }
}

// The matcher; `b` is null when only a yes/no answer is wanted (variables then still have to
// agree with themselves, so a scratch binding set is used for repeated names).
bool match_node(const term& t, const pattern::node& n, bindings& b) {
    switch (n.k) {
    case kind::literal:
        return t == n.literal;
    case kind::any:
        return true;
    case kind::var:
        return b.bind(n.name, t);
    case kind::tuple: {
        if (!t.is_tuple(n.elems.size())) return false;
        auto e = t.elements();
        for (std::size_t i = 0; i < e.size(); ++i)
            if (!match_node(e[i], n.elems[i].root(), b)) return false;
        return true;
    }
    case kind::list: {
        std::size_t count = n.elems.size() - (n.has_tail ? 1 : 0);
        if (!t.is_list()) return false;
        auto e = t.elements();
        if (e.size() < count) return false;
        if (!n.has_tail && (e.size() != count || !t.tail().is_nil())) return false;
        for (std::size_t i = 0; i < count; ++i)
            if (!match_node(e[i], n.elems[i].root(), b)) return false;
        if (!n.has_tail) return true;
        const auto& tail_pattern = n.elems.back().root();
        if (tail_pattern.k == kind::any) return true;
        term rest = term::list_from(std::vector<term>(e.begin() + std::ptrdiff_t(count), e.end()),
                                    t.tail());
        return match_node(rest, tail_pattern, b);
    }
    case kind::map: {
        if (!t.is_map()) return false;
        for (const auto& [k, p] : n.kv) {
            const term* v = t.find(k);
            if (!v || !match_node(*v, p.root(), b)) return false;
        }
        return true;
    }
    }
    return false;
}

} // namespace

std::vector<std::string> pattern::variables() const {
    std::vector<std::string> out;
    collect_vars(*n_, out);
    return out;
}

term pattern::to_term() const {
    return to_term_of(*n_);
}

std::string pattern::to_string() const {
    std::string out;
    write(out, *n_);
    return out;
}

const term* bindings::find(std::string_view name) const noexcept {
    for (const auto& [k, v] : vars_)
        if (k == name) return &v;
    return nullptr;
}

const term& bindings::operator[](std::string_view name) const {
    if (const term* t = find(name)) return *t;
    throw std::out_of_range(fmt::format("erl::bindings: no variable {}", name));
}

bool bindings::bind(std::string_view name, const term& value) {
    if (const term* t = find(name)) return *t == value;
    vars_.emplace_back(std::string(name), value);
    return true;
}

std::optional<bindings> match(const term& t, const pattern& p) {
    bindings b;
    if (!match_node(t, p.root(), b)) return std::nullopt;
    return b;
}

bool matches(const term& t, const pattern& p) {
    bindings b;
    return match_node(t, p.root(), b);
}

} // namespace erl
