// The node names this program answers to. A runtime adds its name while it lives (every runtime
// is `nonode@nohost` until distribution names it), so that a pid can tell whether it is local.
#include <erl/pid.hpp>
#include <erl/ref.hpp>

#include <algorithm>
#include <mutex>
#include <stdexcept>
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
bool is_local_node_name(atom node) noexcept {
    return is_local_node(node);
}
} // namespace detail

bool pid::is_local() const noexcept {
    return detail::is_local_node(node_);
}

bool ref::is_local() const noexcept {
    return detail::is_local_node(node_);
}

ref::ref(atom node, std::uint32_t creation, std::span<const std::uint32_t> words)
    : node_(node), creation_(creation), len_(std::uint8_t(words.size())) {
    if (words.empty() || words.size() > max_words)
        throw std::invalid_argument("erl::ref: 1 to 5 words");
    std::copy(words.begin(), words.end(), words_.begin());
}

} // namespace erl
