#pragma once
#include <erl/atom.hpp>

namespace erl::detail {
void add_local_node(atom name);
void remove_local_node(atom name);
bool is_local_node(atom name);
} // namespace erl::detail
