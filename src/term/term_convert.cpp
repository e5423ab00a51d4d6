#include <erl/term_convert.hpp>

#include <erl/detail/term_util.hpp>

namespace erl {

term_conversion_error::term_conversion_error(std::string path, std::string expected,
                                             const term& got)
    : std::runtime_error(fmt::format("erl::from_term: at {}: expected {}, got {}", path, expected,
                                     [&] {
                                         // Keep messages short for huge terms.
                                         std::string s = got.to_string();
                                         if (s.size() > 200) s = s.substr(0, 200) + "...";
                                         return s;
                                     }())),
      path_(std::move(path)), expected_(std::move(expected)) {}

std::string term_path::to_string() const {
    std::vector<const term_path*> chain;
    for (const term_path* p = this; p; p = p->parent)
        chain.push_back(p);
    std::string out = "$";
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        const term_path& p = **it;
        switch (p.kind) {
        case step::root:
            break;
        case step::tuple:
            out += fmt::format("{{{}}}", p.index);
            break;
        case step::list:
            out += fmt::format("[{}]", p.index);
            break;
        case step::map:
            out += "#{";
            if (p.key) out += p.key->to_string();
            out += "}";
            if (p.field == "key") out += "(key)";
            break;
        case step::field:
            out += fmt::format(".{}", p.field);
            break;
        case step::alternative:
            break;
        }
    }
    return out;
}

namespace detail {
void conversion_failed(const term_path& p, std::string_view expected, const term& got) {
    throw term_conversion_error(p.to_string(), std::string(expected), got);
}
} // namespace detail

std::string term_converter<std::string>::from(const term& t, const term_path& p) {
    if (t.is_binary()) return std::string(t.as_string_view());
    if (t.is_proper_list()) {
        std::string out;
        for (const auto& e : t.elements()) {
            if (!e.is_small_int()) detail::conversion_failed(p, "binary or string", t);
            std::int64_t c = e.as_int64();
            if (c < 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                detail::conversion_failed(p, "binary or string", t);
            detail::append_utf8(out, std::uint32_t(c));
        }
        return out;
    }
    detail::conversion_failed(p, "binary or string", t);
}

term term_converter<exit_reason>::to(const exit_reason& r) {
    if (r.is_exception()) return tuple(r.tag(), term(r.exception_type()), term(r.detail()));
    if (r.has_detail()) return tuple(r.tag(), term(r.detail()));
    return term(r.tag());
}

exit_reason term_converter<exit_reason>::from(const term& t, const term_path&) {
    if (t.is_atom()) return exit_reason(t.as_atom());
    auto text = [](const term& d) -> std::string {
        if (d.is_binary()) return std::string(d.as_string_view());
        if (auto s = try_from_term<std::string>(d); s && d.is_cons()) return *s;
        return d.to_string();
    };
    if (t.is_tuple(2) && t[0].is_atom()) return exit_reason(t[0].as_atom(), text(t[1]));
    // {exception, Type, What} cannot regain its exception object; its text survives.
    if (t.is_tagged_tuple(atoms::exception, 3))
        return exit_reason(atoms::exception, text(t[1]) + ": " + text(t[2]));
    return exit_reason(atoms::error, t.to_string());
}

} // namespace erl
