// Registered names.
#include <erl/registry.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl {

using namespace detail;

namespace {
runtime_impl& caller_runtime(const char* operation) {
    return *require_process(operation).rt;
}
} // namespace

void register_name(atom name, const pid& id) {
    runtime_impl& rt = caller_runtime("register_name");
    if (name == atoms::undefined)
        throw badarg("erl::register_name: 'undefined' cannot be registered");
    if (!rt.owns(id))
        throw badarg(fmt::format("erl::register_name: {} is not a process of this runtime", id));
    process_control* p = rt.table.acquire(id);
    if (!p) throw badarg(fmt::format("erl::register_name: {} is not alive", id));
    struct drop {
        process_control* p;
        ~drop() { p->unref(); }
    } guard{p};
    std::lock_guard lock(rt.names_mutex);
    // Checked under the names lock: a dying process closes its inbox before taking that lock to
    // drop its name, so a closed inbox here means it will never look at its name again.
    if (p->inbox.load(std::memory_order_acquire) == inbox_state::closed)
        throw badarg(fmt::format("erl::register_name: {} is not alive", id));
    if (rt.names.count(name))
        throw badarg(fmt::format("erl::register_name: {} is already registered", name));
    // The name fields are only touched under names_mutex, whichever thread runs the process.
    if (p->name_text.load(std::memory_order_relaxed))
        throw badarg(fmt::format("erl::register_name: {} already has a name", id));
    rt.names.emplace(name, id);
    p->registered_name = name;
    p->has_name = true;
    p->name_text.store(name.name().data(), std::memory_order_seq_cst);
    // Pairs with terminate_process (close, then look at name_text): if the process closed its
    // inbox meanwhile it may have missed the name, so take it back here.
    if (p->inbox.load(std::memory_order_seq_cst) == inbox_state::closed) {
        rt.names.erase(name);
        p->has_name = false;
        p->name_text.store(nullptr, std::memory_order_relaxed);
        throw badarg(fmt::format("erl::register_name: {} is not alive", id));
    }
}

void unregister(atom name) {
    runtime_impl& rt = caller_runtime("unregister");
    std::lock_guard lock(rt.names_mutex);
    auto it = rt.names.find(name);
    if (it == rt.names.end())
        throw badarg(fmt::format("erl::unregister: {} is not registered", name));
    if (process_control* p = rt.table.acquire(it->second)) {
        p->has_name = false;
        p->name_text.store(nullptr, std::memory_order_relaxed);
        p->unref();
    }
    rt.names.erase(it);
}

std::optional<pid> whereis(atom name) {
    runtime_impl& rt = caller_runtime("whereis");
    std::lock_guard lock(rt.names_mutex);
    auto it = rt.names.find(name);
    if (it == rt.names.end()) return std::nullopt;
    return it->second;
}

std::vector<atom> registered() {
    runtime_impl& rt = caller_runtime("registered");
    std::lock_guard lock(rt.names_mutex);
    std::vector<atom> out;
    out.reserve(rt.names.size());
    for (auto& [name, id] : rt.names)
        out.push_back(name);
    return out;
}

} // namespace erl
