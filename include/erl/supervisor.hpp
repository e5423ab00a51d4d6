// erl::supervisor — OTP's supervisor: child specs, restart strategies, restart intensity,
// orderly shutdown, and the runtime API to add, stop, restart and inspect children.
#pragma once

#include <any>
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <erl/atom.hpp>
#include <erl/exit_reason.hpp>
#include <erl/link.hpp>
#include <erl/pid.hpp>

namespace erl::supervisor {

// What a child's start function returns, as OTP's {ok, Pid} / ignore / {error, Reason}.
class start_result {
  public:
    static start_result ok(const erl::pid& p) { return start_result(kind::ok, p, {}); }
    static start_result ignore() { return start_result(kind::ignore, {}, {}); }
    static start_result error(exit_reason reason) {
        return start_result(kind::error, {}, std::move(reason));
    }

    bool is_ok() const noexcept { return kind_ == kind::ok; }
    bool is_ignore() const noexcept { return kind_ == kind::ignore; }
    bool is_error() const noexcept { return kind_ == kind::error; }
    explicit operator bool() const noexcept { return is_ok(); }
    // The started process (null unless ok).
    const erl::pid& pid() const noexcept { return pid_; }
    // Why the start failed (normal unless error).
    const exit_reason& reason() const noexcept { return reason_; }

  private:
    enum class kind { ok, ignore, error };
    start_result(kind k, erl::pid p, exit_reason r) : kind_(k), pid_(p), reason_(std::move(r)) {}
    kind kind_;
    erl::pid pid_;
    exit_reason reason_;
};

// What terminate_child and delete_child return: ok, or {error, Reason} (not_found, running,
// restarting, simple_one_for_one).
class outcome {
  public:
    static outcome ok() { return outcome(); }
    static outcome error(exit_reason reason) { return outcome(std::move(reason)); }
    bool is_ok() const noexcept { return !error_; }
    explicit operator bool() const noexcept { return is_ok(); }
    // The error (normal when ok).
    exit_reason reason() const { return error_ ? *error_ : exit_reason(); }

  private:
    outcome() = default;
    explicit outcome(exit_reason r) : error_(std::move(r)) {}
    std::optional<exit_reason> error_;
};

enum class strategy { one_for_one, one_for_all, rest_for_one, simple_one_for_one };
// permanent: always restarted; transient: restarted only after an abnormal exit (anything but
// normal, shutdown, {shutdown, _}); temporary: never restarted.
enum class restart_type { permanent, transient, temporary };
enum class child_type { worker, supervisor };
// OTP 24's automatic shutdown: when significant children end by themselves.
enum class auto_shutdown { never, any_significant, all_significant };

// How a child is stopped: brutal_kill (exit kill), timeout (exit shutdown, then kill when the
// timeout passes), infinity (exit shutdown and wait; the default for supervisor children).
struct shutdown_policy {
    enum class kind { brutal_kill, timeout, infinity };
    kind how = kind::timeout;
    std::chrono::milliseconds timeout{5000};

    static shutdown_policy brutal_kill() { return {kind::brutal_kill, {}}; }
    static shutdown_policy after(std::chrono::milliseconds t) { return {kind::timeout, t}; }
    static shutdown_policy infinity() { return {kind::infinity, {}}; }
    friend bool operator==(const shutdown_policy&, const shutdown_policy&) = default;
};

// A child's start: runs inside the supervisor process and must start_link the child (so that
// the child is linked to the supervisor).
using start_fn = std::function<start_result()>;
// A simple_one_for_one template's start: gets the extra arguments of start_child(sup, args...)
// as a std::tuple<std::decay_t<Args>...> inside the std::any.
using dynamic_start_fn = std::function<start_result(const std::any& args)>;

struct child_spec {
    atom id{};
    start_fn start{};
    erl::supervisor::restart_type restart = erl::supervisor::restart_type::permanent;
    // Unset: 5000 ms for a worker, infinity for a supervisor (as OTP).
    std::optional<shutdown_policy> shutdown{};
    erl::supervisor::child_type type = erl::supervisor::child_type::worker;
    // Its own end (when not restarted) may shut the supervisor down; see flags::auto_shutdown.
    // Not allowed for permanent children, nor when auto_shutdown is never.
    bool significant = false;
    // simple_one_for_one only: a start taking start_child's extra arguments (see
    // dynamic_worker). When unset, start is used and start_child must get no arguments.
    dynamic_start_fn start_dynamic{};

    shutdown_policy effective_shutdown() const {
        if (shutdown) return *shutdown;
        return type == erl::supervisor::child_type::supervisor
                   ? shutdown_policy::infinity()
                   : shutdown_policy::after(std::chrono::milliseconds(5000));
    }
};

struct flags {
    erl::supervisor::strategy strategy = erl::supervisor::strategy::one_for_one;
    // More than `intensity` restarts within `period` make the supervisor terminate all its
    // children and exit with reason shutdown. OTP's default: 1 restart in 5 seconds.
    int intensity = 1;
    std::chrono::milliseconds period{5000};
    erl::supervisor::auto_shutdown auto_shutdown = erl::supervisor::auto_shutdown::never;
};

// A supervisor, by pid or by registered name.
class sup_ref {
  public:
    sup_ref(const pid& p) : pid_(p) {}  // NOLINT: implicit on purpose
    sup_ref(atom name) : name_(name) {} // NOLINT
    const erl::pid& pid() const noexcept { return pid_; }
    atom name() const noexcept { return name_; }

  private:
    erl::pid pid_;
    atom name_;
};

// Thrown by the runtime API when the supervisor is not alive (reason noproc) or ends before it
// answers (its exit reason), as a gen call exits its caller in OTP.
class call_failed : public std::runtime_error {
  public:
    explicit call_failed(exit_reason reason)
        : std::runtime_error("erl::supervisor: call failed: " + reason.to_string()),
          reason_(std::move(reason)) {}
    const exit_reason& reason() const noexcept { return reason_; }

  private:
    exit_reason reason_;
};

struct child_info {
    atom id;      // undefined for simple_one_for_one children
    erl::pid pid; // null when not running (or restarting)
    bool restarting = false;
    erl::supervisor::child_type type = erl::supervisor::child_type::worker;
};

struct child_counts {
    std::size_t specs = 0;
    std::size_t active = 0; // running
    std::size_t supervisors = 0;
    std::size_t workers = 0;
};

// Starts a supervisor process linked to the caller (which must be a process) and blocks until
// every child has started, in order. ok(pid) on success. When a child fails to start, the
// children already started are stopped in reverse order and the result is
// error({shutdown,{failed_to_start_child,Id,Reason}}); invalid flags or specs give
// error({bad_start_spec,...}); a taken name gives error({already_started,Pid}). A failed
// supervisor has ended (and is unlinked from the caller) when start_link returns. Usable as a
// child's start function: that makes a supervision tree.
start_result start_link(flags f, std::vector<child_spec> children);
start_result start_link(atom name, flags f, std::vector<child_spec> children);

// A child spec for a nested supervisor (type supervisor, shutdown infinity).
child_spec supervisor_spec(atom id, flags f, std::vector<child_spec> children);

// A worker that runs fn(args...) through spawn_link.
template <typename F, typename... Args>
child_spec worker(atom id, F fn, Args... args) {
    child_spec s;
    s.id = id;
    s.start = [fn = std::move(fn), tup = std::make_tuple(std::move(args)...)]() {
        return start_result::ok(
            std::apply([&fn](const auto&... a) { return erl::spawn_link(fn, a...); }, tup));
    };
    return s;
}

// A simple_one_for_one template whose children run fn(args...) through spawn_link, args given
// to start_child(sup, args...) (the same types as fn's parameters, after decay).
template <typename... Args, typename F>
child_spec dynamic_worker(atom id, F fn) {
    child_spec s;
    s.id = id;
    s.start_dynamic = [fn = std::move(fn)](const std::any& extra) {
        const auto* tup = std::any_cast<std::tuple<Args...>>(&extra);
        if (!tup) return start_result::error(exit_reason(atom("badarg"), "start_child arguments"));
        return start_result::ok(
            std::apply([&fn](const auto&... a) { return erl::spawn_link(fn, a...); }, *tup));
    };
    return s;
}

// The runtime API. Each call is a request to the supervisor process, which answers in turn,
// so all are safe while children crash. They throw call_failed when the supervisor is dead.

// Adds a child (started last) to a supervisor that is not simple_one_for_one. Errors:
// {already_started,Pid}, already_present, the child's start error, or a bad spec.
start_result start_child(const sup_ref& sup, child_spec spec);

namespace detail {
start_result start_dynamic_child(const sup_ref& sup, std::any args);
}

// simple_one_for_one: starts a child from the template with these extra arguments.
template <typename... Args>
requires(!(sizeof...(Args) == 1 &&
           (std::is_same_v<std::remove_cvref_t<Args>, child_spec> && ...))) start_result
    start_child(const sup_ref& sup, Args&&... args) {
    return detail::start_dynamic_child(
        sup, std::any(std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)));
}

// Stops a child (its spec stays, but for temporary children). For simple_one_for_one the child
// is named by pid and removed. Errors: not_found, simple_one_for_one (an id given to one).
outcome terminate_child(const sup_ref& sup, atom id);
outcome terminate_child(const sup_ref& sup, const pid& child);
// Starts again a child whose spec is kept but which is not running. Errors: running,
// restarting, not_found, simple_one_for_one, or the start's error.
start_result restart_child(const sup_ref& sup, atom id);
// Removes the spec of a child that is not running. Errors: running, restarting, not_found,
// simple_one_for_one.
outcome delete_child(const sup_ref& sup, atom id);
// Children in start order (simple_one_for_one: in no particular order).
std::vector<child_info> which_children(const sup_ref& sup);
child_counts count_children(const sup_ref& sup);
// The spec of a child by id (or by pid; for simple_one_for_one the template); nullopt when
// there is none.
std::optional<child_spec> get_childspec(const sup_ref& sup, atom id);
std::optional<child_spec> get_childspec(const sup_ref& sup, const pid& child);
// Stops the supervisor as gen_server:stop does: its children are stopped in reverse start
// order, it exits with `reason`, and stop returns once it has ended.
void stop(const sup_ref& sup, exit_reason reason = exit_reason::normal());

// The atoms of supervisor reports (kind of the log_event).
atom supervisor_report_kind();
atom progress_kind();

} // namespace erl::supervisor
