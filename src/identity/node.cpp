// The node names this program answers to. A runtime adds its name while it lives (every runtime
// is `nonode@nohost` until distribution names it), so that a pid can tell whether it is local.
#include <erl/pid.hpp>

#include <algorithm>
#include <mutex>
#include <vector>

#include "identity/node.hpp"

namespace erl {
namespace detail {
namespace {
std::mutex& nodes_mutex() {
    static std::mutex m;
    return m;
}
std::vector<atom>& nodes() {
    static std::vector<atom> v;
    return v;
}
} // namespace

void add_local_node(atom name) {
    std::lock_guard lock(nodes_mutex());
    nodes().push_back(name);
}

void remove_local_node(atom name) {
    std::lock_guard lock(nodes_mutex());
    auto& v = nodes();
    if (auto it = std::find(v.begin(), v.end(), name); it != v.end()) v.erase(it);
}

bool is_local_node(atom name) {
    if (name == atoms::nonode_nohost) return true;
    std::lock_guard lock(nodes_mutex());
    auto& v = nodes();
    return std::find(v.begin(), v.end(), name) != v.end();
}
} // namespace detail

bool pid::is_local() const noexcept {
    return detail::is_local_node(node_);
}

} // namespace erl
