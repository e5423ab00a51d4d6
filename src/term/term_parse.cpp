// A recursive-descent reader of Erlang literal terms and patterns. Patterns are the general
// form (terms are patterns without variables), so both share one grammar.
#include <erl/term.hpp>
#include <erl/term_match.hpp>

#include <erl/detail/term_util.hpp>

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace erl {

namespace {

constexpr std::size_t max_parse_depth = 1000; // recursion bound: keeps the stack small

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Erlang names may use Latin-1 letters (erl_scan): lower case 223..255 except 247 start atoms,
// upper case 192..222 except 215 start variables, and any of them continues a name.
std::uint32_t cp_at(std::string_view s, std::size_t i, std::size_t& len) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
        len = 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0 && i + 1 < s.size() &&
        (static_cast<unsigned char>(s[i + 1]) & 0xC0) == 0x80) {
        len = 2;
        return ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
    }
    len = 1;
    return 0xFFFFFFFF;
}
bool is_lower_cp(std::uint32_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 223 && c <= 255 && c != 247);
}
bool is_upper_cp(std::uint32_t c) {
    return (c >= 'A' && c <= 'Z') || c == '_' || (c >= 192 && c <= 222 && c != 215);
}
bool is_name_cp(std::uint32_t c) {
    return is_lower_cp(c) || is_upper_cp(c) || (c >= '0' && c <= '9') || c == '@';
}

// Accumulates bits, most significant first, for binary literals.
struct bit_writer {
    std::vector<std::uint8_t> bytes;
    std::size_t bits = 0;
    void put(std::uint64_t v, unsigned n) {
        for (unsigned i = n; i-- > 0;) {
            if (bits % 8 == 0) bytes.push_back(0);
            if ((v >> i) & 1) bytes.back() |= std::uint8_t(0x80 >> (bits % 8));
            ++bits;
        }
    }
};

class parser {
  public:
    parser(std::string_view s, bool allow_vars) : s_(s), vars_(allow_vars) {}

    pattern parse_all() {
        pattern p = value(0);
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            skip_ws();
        }
        if (pos_ != s_.size()) fail("unexpected text after the term");
        return p;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const { throw term_parse_error(pos_, what); }

    void skip_ws() {
        while (pos_ < s_.size()) {
            char c = s_[pos_];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                ++pos_;
            } else if (c == '%') {
                while (pos_ < s_.size() && s_[pos_] != '\n')
                    ++pos_;
            } else {
                break;
            }
        }
    }
    bool at(char c) {
        skip_ws();
        return pos_ < s_.size() && s_[pos_] == c;
    }
    bool at2(std::string_view t) {
        skip_ws();
        return s_.substr(pos_, t.size()) == t;
    }
    void expect(std::string_view t) {
        skip_ws();
        if (s_.substr(pos_, t.size()) != t) fail(fmt::format("expected '{}'", t));
        pos_ += t.size();
    }
    char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

    pattern value(std::size_t depth) {
        if (depth > max_parse_depth) fail("nesting too deep");
        skip_ws();
        if (pos_ >= s_.size()) fail("unexpected end of text");
        char c = s_[pos_];
        if (c == '{') return tuple(depth);
        if (c == '[') return list(depth);
        if (c == '#' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{') return map(depth);
        if (c == '<' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '<') return binary();
        if (c == '"') return pattern(string_list());
        if (c == '\'') return pattern(term::make_atom(quoted('\'')));
        if (c == '$') {
            ++pos_;
            return pattern(term(std::int64_t(char_literal())));
        }
        if (is_digit(c) || ((c == '-' || c == '+') && pos_ + 1 < s_.size()))
            return pattern(number());
        std::size_t cl = 0;
        std::uint32_t cp = cp_at(s_, pos_, cl);
        if (is_lower_cp(cp)) {
            std::string_view name = word();
            if (name == "fun") return pattern(fun());
            return pattern(term::make_atom(name));
        }
        if (is_upper_cp(cp)) {
            std::size_t at_pos = pos_;
            std::string_view name = word();
            if (!vars_) {
                pos_ = at_pos;
                fail(fmt::format("variable '{}' in a term", name));
            }
            return name == "_" ? pattern::any() : pattern::var(std::string(name));
        }
        fail(fmt::format("unexpected character '{}'", c));
    }

    std::string_view word() {
        std::size_t b = pos_;
        std::size_t len = 0;
        while (pos_ < s_.size() && is_name_cp(cp_at(s_, pos_, len)))
            pos_ += len;
        return s_.substr(b, pos_ - b);
    }

    pattern tuple(std::size_t depth) {
        ++pos_;
        std::vector<pattern> elems;
        if (!at('}')) {
            for (;;) {
                elems.push_back(value(depth + 1));
                if (at('}')) break;
                expect(",");
            }
        }
        ++pos_;
        return pattern::tuple(std::move(elems));
    }

    pattern list(std::size_t depth) {
        ++pos_;
        std::vector<pattern> elems;
        std::optional<pattern> tail;
        if (!at(']')) {
            for (;;) {
                elems.push_back(value(depth + 1));
                if (at('|')) {
                    ++pos_;
                    tail = value(depth + 1);
                    break;
                }
                if (at(']')) break;
                expect(",");
            }
        }
        expect("]");
        return pattern::list(std::move(elems), std::move(tail));
    }

    pattern map(std::size_t depth) {
        pos_ += 2;
        std::vector<std::pair<term, pattern>> kv;
        if (!at('}')) {
            for (;;) {
                std::size_t key_pos = pos_;
                pattern k = value(depth + 1);
                term key;
                try {
                    key = k.to_term(); // Erlang also allows bound variables; we have none
                } catch (const bad_term_access&) {
                    pos_ = key_pos;
                    fail("map keys must be literals");
                }
                if (at2("=>"))
                    pos_ += 2;
                else if (vars_ && at2(":="))
                    pos_ += 2;
                else
                    fail("expected '=>'");
                kv.emplace_back(std::move(key), value(depth + 1));
                if (at('}')) break;
                expect(",");
            }
        }
        ++pos_;
        return pattern::map(std::move(kv));
    }

    term fun() {
        // fun Module:Function/Arity
        skip_ws();
        term m = peek() == '\'' ? term::make_atom(quoted('\'')) : term::make_atom(word());
        expect(":");
        skip_ws();
        term f = peek() == '\'' ? term::make_atom(quoted('\'')) : term::make_atom(word());
        expect("/");
        skip_ws();
        std::size_t b = pos_;
        while (pos_ < s_.size() && is_digit(s_[pos_]))
            ++pos_;
        unsigned arity = 0;
        auto r = std::from_chars(s_.data() + b, s_.data() + pos_, arity);
        if (b == pos_ || r.ec != std::errc() || arity > 255) fail("bad fun arity");
        if (m.atom_name().empty() && f.atom_name().empty()) fail("bad fun");
        return term::export_fun(m.as_atom(), f.as_atom(), std::uint8_t(arity));
    }

    term number() {
        std::size_t start = pos_;
        bool neg = false;
        if (s_[pos_] == '-' || s_[pos_] == '+') {
            neg = s_[pos_] == '-';
            ++pos_;
            skip_ws(); // Erlang reads "- 1" as a negative literal too
            if (peek() == '$') {
                ++pos_;
                auto c = std::int64_t(char_literal());
                return term(neg ? -c : c);
            }
            if (!is_digit(peek())) {
                pos_ = start;
                fail("expected a number");
            }
        }
        auto digits = [&](auto ok) {
            std::string d;
            while (pos_ < s_.size() && (ok(s_[pos_]) || s_[pos_] == '_')) {
                if (s_[pos_] == '_') {
                    // Digit separators only between digits.
                    if (d.empty() || pos_ + 1 >= s_.size() || !ok(s_[pos_ + 1]))
                        fail("misplaced '_'");
                } else {
                    d.push_back(s_[pos_]);
                }
                ++pos_;
            }
            return d;
        };
        std::string intpart = digits(is_digit);
        if (peek() == '#') {
            ++pos_;
            unsigned base = 0;
            std::from_chars(intpart.data(), intpart.data() + intpart.size(), base);
            if (base < 2 || base > 36 || intpart.size() > 2) fail("bad base");
            std::string d = digits([base](char c) {
                unsigned v = is_digit(c)              ? unsigned(c - '0')
                             : (c >= 'a' && c <= 'z') ? unsigned(c - 'a' + 10)
                             : (c >= 'A' && c <= 'Z') ? unsigned(c - 'A' + 10)
                                                      : 99;
                return v < base;
            });
            auto b = bigint::parse(d, base);
            if (!b) fail("bad based integer");
            return neg ? term(bigint::parse("-" + d, base).value()) : term(std::move(*b));
        }
        if (peek() == '.' && pos_ + 1 < s_.size() && is_digit(s_[pos_ + 1])) {
            ++pos_;
            std::string text = intpart + "." + digits(is_digit);
            if (peek() == 'e' || peek() == 'E') {
                std::size_t save = pos_;
                ++pos_;
                std::string exp;
                if (peek() == '-' || peek() == '+') exp.push_back(s_[pos_++]);
                std::string ed = digits(is_digit);
                if (ed.empty())
                    pos_ = save;
                else
                    text += "e" + exp + ed;
            }
            double d = 0;
            auto r = std::from_chars(text.data(), text.data() + text.size(), d);
            if (r.ec != std::errc() || !std::isfinite(d)) {
                pos_ = start;
                fail("float out of range");
            }
            return term(neg ? -d : d);
        }
        auto b = bigint::parse(intpart);
        if (!b) fail("bad integer");
        return neg ? term(bigint::parse("-" + intpart).value()) : term(std::move(*b));
    }

    // One character of a quoted text (after any backslash processing): its code point.
    std::uint32_t text_char() {
        if (pos_ >= s_.size()) fail("unterminated text");
        auto c = static_cast<unsigned char>(s_[pos_]);
        if (c == '\\') {
            ++pos_;
            return escape();
        }
        return utf8_char();
    }

    std::uint32_t utf8_char() {
        auto c = static_cast<unsigned char>(s_[pos_]);
        if (c < 0x80) {
            ++pos_;
            return c;
        }
        std::size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        std::string_view ch = s_.substr(pos_, len);
        if (ch.size() != len || detail::utf8_length(ch) != 1) fail("invalid UTF-8");
        std::uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (std::size_t k = 1; k < len; ++k)
            cp = (cp << 6) | (ch[k] & 0x3F);
        pos_ += len;
        return cp;
    }

    std::uint32_t escape() {
        if (pos_ >= s_.size()) fail("unterminated escape");
        char c = s_[pos_++];
        switch (c) {
        case 'b':
            return '\b';
        case 'd':
            return 127;
        case 'e':
            return 27;
        case 'f':
            return '\f';
        case 'n':
            return '\n';
        case 'r':
            return '\r';
        case 's':
            return ' ';
        case 't':
            return '\t';
        case 'v':
            return '\v';
        case '^': {
            if (pos_ >= s_.size()) fail("unterminated escape");
            return std::uint32_t(s_[pos_++]) & 31;
        }
        case 'x': {
            std::size_t b = pos_;
            std::uint32_t v = 0;
            if (peek() == '{') {
                ++pos_;
                b = pos_;
                while (pos_ < s_.size() && std::isxdigit(static_cast<unsigned char>(s_[pos_])))
                    ++pos_;
                auto r = std::from_chars(s_.data() + b, s_.data() + pos_, v, 16);
                if (b == pos_ || r.ec != std::errc() || peek() != '}') fail("bad \\x{...} escape");
                ++pos_;
            } else {
                while (pos_ < s_.size() && pos_ < b + 2 &&
                       std::isxdigit(static_cast<unsigned char>(s_[pos_])))
                    ++pos_;
                if (b == pos_) fail("bad \\x escape");
                std::from_chars(s_.data() + b, s_.data() + pos_, v, 16);
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) fail("bad code point");
            return v;
        }
        default:
            if (c >= '0' && c <= '7') {
                std::uint32_t v = std::uint32_t(c - '0');
                for (int k = 0; k < 2 && peek() >= '0' && peek() <= '7'; ++k)
                    v = v * 8 + std::uint32_t(s_[pos_++] - '0');
                return v;
            }
            // \' \" \\ and any other character stand for themselves.
            --pos_;
            return utf8_char();
        }
    }

    std::uint32_t char_literal() { return text_char(); }

    std::string quoted(char q) {
        ++pos_;
        std::string out;
        for (;;) {
            if (pos_ >= s_.size()) fail("unterminated quoted text");
            if (s_[pos_] == q) {
                ++pos_;
                return out;
            }
            detail::append_utf8(out, text_char());
        }
    }

    std::vector<std::uint32_t> string_chars() {
        std::vector<std::uint32_t> cps;
        // Adjacent strings concatenate: "ab" "cd".
        do {
            ++pos_;
            for (;;) {
                if (pos_ >= s_.size()) fail("unterminated string");
                if (s_[pos_] == '"') {
                    ++pos_;
                    break;
                }
                cps.push_back(text_char());
            }
        } while (at('"'));
        return cps;
    }

    term string_list() {
        std::vector<term> v;
        for (auto cp : string_chars())
            v.emplace_back(cp);
        return term::list_from(std::move(v));
    }

    pattern binary() {
        pos_ += 2;
        bit_writer w;
        if (!at2(">>")) {
            for (;;) {
                skip_ws();
                std::size_t seg_pos = pos_;
                std::vector<std::uint32_t> text;
                bool is_text = peek() == '"';
                term value;
                if (is_text)
                    text = string_chars();
                else if (peek() == '$') {
                    ++pos_;
                    value = term(std::int64_t(char_literal()));
                } else if (is_digit(peek()) || peek() == '-' || peek() == '+')
                    value = number();
                else
                    fail("binary segments must be integers or strings");
                unsigned size = 8;
                bool utf8 = false;
                if (at(':')) {
                    ++pos_;
                    skip_ws();
                    std::size_t b = pos_;
                    while (pos_ < s_.size() && is_digit(s_[pos_]))
                        ++pos_;
                    auto r = std::from_chars(s_.data() + b, s_.data() + pos_, size);
                    if (b == pos_ || r.ec != std::errc() || size > 64)
                        fail("bad segment size (1..64)");
                }
                if (at('/')) {
                    ++pos_;
                    std::string_view type = word();
                    if (type == "utf8")
                        utf8 = true;
                    else if (type != "integer")
                        fail("only /utf8 and /integer segments");
                }
                auto put_int = [&](std::int64_t v, std::size_t at_pos) {
                    if (utf8) {
                        if (v < 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
                            pos_ = at_pos;
                            fail("bad code point");
                        }
                        std::string u;
                        detail::append_utf8(u, std::uint32_t(v));
                        for (char c : u)
                            w.put(static_cast<unsigned char>(c), 8);
                    } else {
                        w.put(std::uint64_t(v), size);
                    }
                };
                if (is_text) {
                    for (auto cp : text)
                        put_int(cp, seg_pos);
                } else {
                    if (!value.is_small_int()) fail("segment value out of range");
                    put_int(value.as_int64(), seg_pos);
                }
                if (at2(">>")) break;
                expect(",");
            }
        }
        pos_ += 2;
        return pattern(w.bits % 8 == 0 ? term::binary(std::move(w.bytes))
                                       : term::bitstring(w.bytes, w.bits));
    }

    std::string_view s_;
    std::size_t pos_ = 0;
    bool vars_;
};

} // namespace

term term::parse(std::string_view text) {
    return parser(text, false).parse_all().to_term();
}

pattern pattern::parse(std::string_view text) {
    return parser(text, true).parse_all();
}

} // namespace erl
