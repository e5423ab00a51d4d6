#include <erl/logger.hpp>

#include <cstdio>
#include <memory>
#include <mutex>

namespace erl {
namespace {

void write_to_stderr(const log_event& e) {
    std::string line;
    if (e.kind != atom()) {
        line = fmt::format("=ERLCPP {} REPORT [{}] {}\n", e.kind, e.level, e.text);
    } else {
        line = fmt::format("=ERLCPP [{}] {}\n", e.level, e.text);
    }
    std::fwrite(line.data(), 1, line.size(), stderr);
}

std::mutex handler_mutex;
// Replaced by copy-on-write so that logging never holds the lock while the handler runs.
std::shared_ptr<const log_handler>& handler_slot() {
    static auto* slot =
        new std::shared_ptr<const log_handler>(std::make_shared<log_handler>(&write_to_stderr));
    return *slot;
}

} // namespace

log_handler set_log_handler(log_handler handler) {
    if (!handler) handler = &write_to_stderr;
    auto next = std::make_shared<const log_handler>(std::move(handler));
    std::lock_guard lock(handler_mutex);
    log_handler previous = *handler_slot();
    handler_slot() = std::move(next);
    return previous;
}

void log(const log_event& event) {
    std::shared_ptr<const log_handler> h;
    {
        std::lock_guard lock(handler_mutex);
        h = handler_slot();
    }
    try {
        (*h)(event);
    } catch (...) {
        // A failing log handler must not take the process (or the runtime) down with it.
    }
}

} // namespace erl
