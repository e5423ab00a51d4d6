// Printing terms in Erlang syntax (what io_lib:format("~p") prints for short terms, without
// line breaks), such that erl_scan + erl_parse read back an =:= term wherever Erlang can.
#include <erl/term.hpp>

#include <erl/detail/term_util.hpp>

#include "identity/node.hpp"

#include <charconv>
#include <cmath>
#include <system_error>

namespace erl {

using detail::term_access;
using detail::term_tag;

namespace detail {

bool printable_char(std::int64_t c) noexcept {
    // ASCII only: wider characters print as integers, which keeps our output pure ASCII for
    // strings and binaries and still reads back to the same term.
    return (c >= 32 && c <= 126) || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\b' ||
           c == '\f' || c == 27;
}

void append_escaped_char(std::string& out, std::uint32_t c, char quote) {
    switch (c) {
    case '\n':
        out += "\\n";
        return;
    case '\r':
        out += "\\r";
        return;
    case '\t':
        out += "\\t";
        return;
    case '\v':
        out += "\\v";
        return;
    case '\b':
        out += "\\b";
        return;
    case '\f':
        out += "\\f";
        return;
    case 27:
        out += "\\e";
        return;
    case '\\':
        out += "\\\\";
        return;
    default:
        break;
    }
    if (c == std::uint32_t(quote)) {
        out.push_back('\\');
        out.push_back(quote);
    } else {
        append_utf8(out, c);
    }
}

} // namespace detail

namespace {

// Erlang's shortest round-trip float text (float_to_list(F, [short]), which ~p uses): the
// shortest digits that read back to the same double, in plain or exponent notation by OTP's
// rule (io_lib_format): plain unless the exponent form is shorter, counting the ".0" a single
// digit needs, and never plain for integral values at or beyond 2^53, whose last digits would
// suggest a precision the double does not have. Verified against OTP 25 in the tests.
void append_float(std::string& out, double d) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string_view s(buf, std::size_t(r.ptr - buf));
    bool neg = !s.empty() && s[0] == '-';
    if (neg) s.remove_prefix(1);
    auto e = s.find('e');
    std::string digits;
    for (char c : s.substr(0, e))
        if (c != '.') digits.push_back(c);
    int exp = 0;
    std::from_chars(s.data() + e + 1 + (s[e + 1] == '+'), s.data() + s.size(), exp);
    while (digits.size() > 1 && digits.back() == '0')
        digits.pop_back();
    const int len = int(digits.size());
    const int place = exp - len + 1; // value = digits * 10^place
    const int exp_cost = int(std::to_string(exp).size()) + 2;
    const int dot = len == 1 ? 1 : 0;

    if (neg) out.push_back('-');
    auto sci = [&] {
        out.push_back(digits[0]);
        out.push_back('.');
        out += len > 1 ? std::string_view(digits).substr(1) : std::string_view("0");
        out += 'e';
        out += std::to_string(exp);
    };
    if (place < 0) {
        if (exp >= 0) {
            out += std::string_view(digits).substr(0, std::size_t(len + place));
            out.push_back('.');
            out += std::string_view(digits).substr(std::size_t(len + place));
        } else if (2 - place - len <= exp_cost + dot) {
            out += "0.";
            out.append(std::size_t(-place - len), '0');
            out += digits;
        } else {
            sci();
        }
    } else if (exp_cost + dot >= place + 2 && std::fabs(d) < 9007199254740992.0) {
        out += digits;
        out.append(std::size_t(place), '0');
        out += ".0";
    } else {
        sci();
    }
}

bool is_printable_string(std::span<const term> elems) {
    if (elems.empty()) return false;
    for (const auto& e : elems)
        if (!e.is_small_int() || !detail::printable_char(e.as_int64())) return false;
    return true;
}

std::uint32_t node_number(const term& node) {
    // As erl::pid prints: 0 for this program's nodes, else a number standing for the node.
    if (term_access::tag(node) == term_tag::atom) {
        atom a = node.as_atom();
        return detail::is_local_node(a) ? 0u : a.index() + 1u;
    }
    return std::uint32_t(std::hash<std::string_view>{}(node.atom_name()) | 0x80000000u);
}

void write(std::string& out, const term& t) {
    switch (term_access::tag(t)) {
    case term_tag::small:
        out += std::to_string(t.as_int64());
        return;
    case term_tag::big:
        out += t.as_bigint().to_string();
        return;
    case term_tag::flt:
        append_float(out, t.as_double());
        return;
    case term_tag::atom:
    case term_tag::atom_text:
        format_atom_to(out, t.atom_name());
        return;
    case term_tag::nil:
        out += "[]";
        return;
    case term_tag::tuple: {
        out.push_back('{');
        bool first = true;
        for (const auto& e : t.elements()) {
            if (!first) out.push_back(',');
            first = false;
            write(out, e);
        }
        out.push_back('}');
        return;
    }
    case term_tag::list: {
        auto elems = t.elements();
        if (t.tail().is_nil() && is_printable_string(elems)) {
            out.push_back('"');
            for (const auto& e : elems)
                detail::append_escaped_char(out, std::uint32_t(e.as_int64()), '"');
            out.push_back('"');
            return;
        }
        out.push_back('[');
        bool first = true;
        for (const auto& e : elems) {
            if (!first) out.push_back(',');
            first = false;
            write(out, e);
        }
        if (!t.tail().is_nil()) {
            out.push_back('|');
            write(out, t.tail());
        }
        out.push_back(']');
        return;
    }
    case term_tag::map: {
        out += "#{";
        bool first = true;
        for (const auto& [k, v] : t.map_entries()) {
            if (!first) out.push_back(',');
            first = false;
            write(out, k);
            out += " => ";
            write(out, v);
        }
        out.push_back('}');
        return;
    }
    case term_tag::bits: {
        auto b = t.bytes();
        std::size_t bits = t.bit_size();
        out += "<<";
        bool text = bits % 8 == 0 && !b.empty();
        for (auto c : b)
            if (!detail::printable_char(c)) text = false;
        if (text) {
            out.push_back('"');
            for (auto c : b)
                detail::append_escaped_char(out, c, '"');
            out.push_back('"');
        } else {
            std::size_t full = bits / 8;
            for (std::size_t i = 0; i < full; ++i) {
                if (i) out.push_back(',');
                out += std::to_string(b[i]);
            }
            if (unsigned rest = bits % 8) {
                if (full) out.push_back(',');
                out += fmt::format("{}:{}", b[full] >> (8 - rest), rest);
            }
        }
        out += ">>";
        return;
    }
    case term_tag::pid:
        out += fmt::format("<{}.{}.{}>", node_number(t.node()), t.id(), t.serial());
        return;
    case term_tag::port:
        out += fmt::format("#Port<{}.{}>", node_number(t.node()), t.id());
        return;
    case term_tag::ref: {
        out += fmt::format("#Ref<{}", node_number(t.node()));
        auto w = t.ref_words();
        for (std::size_t i = w.size(); i-- > 0;)
            out += fmt::format(".{}", w[i]);
        out.push_back('>');
        return;
    }
    case term_tag::export_fun: {
        out += "fun ";
        format_atom_to(out, t.fun_module());
        out.push_back(':');
        format_atom_to(out, t.fun_name());
        out += fmt::format("/{}", t.fun_arity());
        return;
    }
    case term_tag::local_fun: {
        const auto& n = term_access::as<detail::local_fun_node>(t);
        out += "#Fun<";
        out += n.module.atom_name();
        out += fmt::format(".{}.{}>", n.index, n.old_uniq.to_string());
        return;
    }
    }
}

} // namespace

std::string term::to_string() const {
    std::string out;
    write(out, *this);
    return out;
}

} // namespace erl
