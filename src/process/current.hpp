#pragma once
#include <erl/atom.hpp>

#include <cstdint>

namespace erl::detail {
struct node_identity {
    atom name;
    std::uint32_t creation;
};
// The node (and creation) of the calling process's runtime, or nonode@nohost/0 outside one.
node_identity current_node() noexcept;
} // namespace erl::detail
