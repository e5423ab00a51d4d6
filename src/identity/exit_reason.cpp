#include <erl/exit_reason.hpp>

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

namespace erl {

struct exit_reason::payload {
    std::string detail;
    std::string exception_type;
    std::exception_ptr exception;
};

namespace {

std::string demangle(const char* mangled) {
    int status = 0;
    char* s = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
    std::string out = status == 0 && s ? s : mangled;
    std::free(s);
    return out;
}

} // namespace

exit_reason::exit_reason(atom tag, std::string detail)
    : tag_(tag), detail_(std::make_shared<payload>(payload{std::move(detail), {}, {}})) {}

exit_reason exit_reason::from_exception(std::exception_ptr e) {
    exit_reason r(atoms::exception);
    auto p = std::make_shared<payload>();
    p->exception = e;
    try {
        if (e) std::rethrow_exception(e);
        p->exception_type = "unknown";
    } catch (const std::exception& ex) {
        p->exception_type = demangle(typeid(ex).name());
        p->detail = ex.what();
    } catch (...) {
        const std::type_info* t = abi::__cxa_current_exception_type();
        p->exception_type = t ? demangle(t->name()) : "unknown";
    }
    r.detail_ = std::move(p);
    return r;
}

std::string_view exit_reason::detail() const noexcept {
    return detail_ ? std::string_view(detail_->detail) : std::string_view();
}
std::string_view exit_reason::exception_type() const noexcept {
    return detail_ ? std::string_view(detail_->exception_type) : std::string_view();
}
std::exception_ptr exit_reason::exception() const noexcept {
    return detail_ ? detail_->exception : nullptr;
}

bool operator==(const exit_reason& a, const exit_reason& b) noexcept {
    if (a.tag_ != b.tag_ || bool(a.detail_) != bool(b.detail_)) return false;
    if (!a.detail_) return true;
    return a.detail_->detail == b.detail_->detail &&
           a.detail_->exception_type == b.detail_->exception_type;
}

std::string exit_reason::to_string() const {
    std::string out;
    if (!detail_) {
        format_atom_to(out, tag_.name());
        return out;
    }
    out.push_back('{');
    format_atom_to(out, tag_.name());
    out.push_back(',');
    if (is_exception()) {
        format_atom_to(out, detail_->exception_type);
        out.push_back(',');
    }
    detail::append_quoted(out, detail_->detail, '"');
    out.push_back('}');
    return out;
}

} // namespace erl
