// erl::remote_name — a registered process on some node: Erlang's {Name, Node}.
#pragma once

#include <string_view>

#include <fmt/format.h>

#include <erl/atom.hpp>

namespace erl {

struct remote_name {
    atom name;
    atom node;
    friend bool operator==(const remote_name&, const remote_name&) = default;
};

} // namespace erl

template <>
struct fmt::formatter<erl::remote_name> : fmt::formatter<std::string_view> {
    template <typename FormatContext>
    auto format(const erl::remote_name& r, FormatContext& ctx) const -> decltype(ctx.out()) {
        return fmt::format_to(ctx.out(), "{{{},{}}}", r.name, r.node);
    }
};
