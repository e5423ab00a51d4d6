// The supervisor process: its own receive loop over exit messages, API requests and retries.
#include <erl/supervisor.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>

#include <erl/detail/supervisor_call.hpp>
#include <erl/link.hpp>
#include <erl/logger.hpp>
#include <erl/message.hpp>
#include <erl/monitor.hpp>
#include <erl/process.hpp>
#include <erl/receive.hpp>
#include <erl/registry.hpp>

namespace erl::supervisor {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// ---- the protocol -------------------------------------------------------------------------

struct op_start_child {
    child_spec spec;
};
struct op_start_dynamic {
    std::any args;
};
struct op_terminate {
    atom id;
    pid child;
};
struct op_restart {
    atom id;
};
struct op_delete {
    atom id;
};
struct op_which {};
struct op_count {};
struct op_get_spec {
    atom id;
    pid child;
};
struct op_stop {
    exit_reason reason;
};
using op = std::variant<op_start_child, op_start_dynamic, op_terminate, op_restart, op_delete,
                        op_which, op_count, op_get_spec, op_stop>;
using reply = std::variant<start_result, outcome, std::vector<child_info>, child_counts,
                           std::optional<child_spec>, std::monostate>;
using request_msg = erl::detail::sup_call_request<op>;

// The start handshake between start_link and the new supervisor.
struct start_ack {
    pid from;
    start_result result;
};
// A restart that failed is tried again through the mailbox, so that requests and other exits
// are served in between (OTP's try_again_restart).
struct try_again {
    pid supervisor;
    atom id;       // static child
    pid old_child; // simple_one_for_one child
};

// ---- formatting ---------------------------------------------------------------------------

std::string_view name_of(restart_type r) {
    switch (r) {
    case restart_type::permanent:
        return "permanent";
    case restart_type::transient:
        return "transient";
    case restart_type::temporary:
        return "temporary";
    }
    return "?";
}

std::string shutdown_text(const shutdown_policy& s) {
    switch (s.how) {
    case shutdown_policy::kind::brutal_kill:
        return "brutal_kill";
    case shutdown_policy::kind::infinity:
        return "infinity";
    case shutdown_policy::kind::timeout:
        break;
    }
    return std::to_string(s.timeout.count());
}

std::string offender(const pid& p, const child_spec& s) {
    return fmt::format("[{{pid,{}}},{{id,{}}},{{restart_type,{}}},{{significant,{}}},"
                       "{{shutdown,{}}},{{child_type,{}}}]",
                       p, s.id, name_of(s.restart), s.significant ? "true" : "false",
                       shutdown_text(s.effective_shutdown()),
                       s.type == child_type::supervisor ? "supervisor" : "worker");
}

const atom undefined_id = atoms::undefined;

bool normal_exit(const exit_reason& r) {
    return r.is_normal() || r.is_shutdown();
}

// ---- the supervisor -----------------------------------------------------------------------

struct child {
    child_spec spec;
    pid current; // null when not running
    bool restarting = false;
};

struct dynamic_child {
    std::any args;
    bool restarting = false;
};

class supervisor_process {
  public:
    supervisor_process(pid parent, atom name, flags f)
        : parent_(parent), name_(name), flags_(f), self_(erl::self()) {}

    // Starts the children in order; on failure stops the started ones and returns the error.
    std::optional<exit_reason> init(std::vector<child_spec> specs) {
        if (auto bad = check_flags()) return bad;
        if (flags_.strategy == strategy::simple_one_for_one) {
            if (specs.size() != 1)
                return exit_reason(atom("bad_start_spec"),
                                   "simple_one_for_one needs exactly one child spec");
            if (auto bad = check_spec(specs[0])) return bad;
            template_ = std::move(specs[0]);
            return std::nullopt;
        }
        for (std::size_t i = 0; i < specs.size(); ++i) {
            if (auto bad = check_spec(specs[i])) return bad;
            for (std::size_t j = 0; j < i; ++j)
                if (specs[j].id == specs[i].id)
                    return exit_reason(atom("bad_start_spec"),
                                       fmt::format("duplicate_child_name {}", specs[i].id));
        }
        for (auto& s : specs) {
            start_result r = start_one(s);
            if (r.is_error()) {
                report("start_error", r.reason(), pid(), s);
                terminate_static_children();
                return exit_reason::shutdown(
                    fmt::format("{{failed_to_start_child,{},{}}}", s.id, r.reason()));
            }
            if (r.is_ignore() && s.restart == restart_type::temporary) continue;
            children_.push_back(child{std::move(s), r.pid(), false});
        }
        return std::nullopt;
    }

    [[noreturn]] void loop() {
        for (;;) {
            erl::receive([this](exit_msg&& m) { on_exit(m); },
                         [this](request_msg&& r) { on_request(r); },
                         guard([this](const try_again& t) { return t.supervisor == self_; },
                               [this](try_again&& t) { on_try_again(t); }));
        }
    }

  private:
    // -- validation --

    std::optional<exit_reason> check_flags() const {
        if (flags_.intensity < 0 || flags_.period <= 0ms)
            return exit_reason(atom("bad_flags"), "intensity must be >= 0 and period > 0");
        return std::nullopt;
    }

    std::optional<exit_reason> check_spec(const child_spec& s) const {
        if (!s.start && !s.start_dynamic)
            return exit_reason(atom("bad_start_spec"), fmt::format("{}: no start function", s.id));
        if (s.start_dynamic && flags_.strategy != strategy::simple_one_for_one)
            return exit_reason(atom("bad_start_spec"),
                               fmt::format("{}: start_dynamic needs simple_one_for_one", s.id));
        if (s.significant && s.restart == restart_type::permanent)
            return exit_reason(atom("bad_start_spec"),
                               fmt::format("{}: a permanent child cannot be significant", s.id));
        if (s.significant && flags_.auto_shutdown == auto_shutdown::never)
            return exit_reason(atom("bad_start_spec"),
                               fmt::format("{}: significant child with auto_shutdown never", s.id));
        if (s.shutdown && s.shutdown->how == shutdown_policy::kind::timeout &&
            s.shutdown->timeout < 0ms)
            return exit_reason(atom("bad_start_spec"), fmt::format("{}: bad shutdown", s.id));
        return std::nullopt;
    }

    // -- reports --

    void report(std::string_view context, const exit_reason& reason, const pid& p,
                const child_spec& s) const {
        log_report(fmt::format("supervisor: {} errorContext: {} reason: {} offender: {}",
                               display_name(), context, reason, offender(p, s)),
                   reason);
    }

    void report_shutdown(std::string_view context, const exit_reason& reason) const {
        log_report(fmt::format("supervisor: {} errorContext: {} reason: {}", display_name(),
                               context, reason),
                   reason);
    }

    void log_report(std::string text, const exit_reason& reason) const {
        log_event e;
        e.level = log_level::error;
        e.kind = supervisor_report_kind();
        e.process = self_;
        e.name = name_;
        e.reason = reason;
        e.text = std::move(text);
        erl::log(e);
    }

    void progress(const pid& p, const child_spec& s) const {
        log_event e;
        e.level = log_level::info;
        e.kind = progress_kind();
        e.process = self_;
        e.name = name_;
        e.text = fmt::format("supervisor: {} started: {}", display_name(), offender(p, s));
        erl::log(e);
    }

    std::string display_name() const {
        return name_ != atom() ? fmt::format("{{local,{}}}", name_) : fmt::format("{}", self_);
    }

    // -- starting --

    start_result call_start(const std::function<start_result()>& fn) {
        try {
            return fn();
        } catch (const erl::detail::exit_exception&) {
            throw; // the supervisor itself is being ended
        } catch (...) {
            return start_result::error(exit_reason::from_exception(std::current_exception()));
        }
    }

    start_result start_one(const child_spec& s) {
        start_result r = call_start(s.start);
        if (r.is_ok() && !r.pid())
            r = start_result::error(exit_reason(atom("bad_return"), "ok with a null pid"));
        if (r.is_ok()) progress(r.pid(), s);
        return r;
    }

    start_result start_dynamic(const std::any& args) {
        start_result r = call_start([&]() {
            if (template_.start_dynamic) return template_.start_dynamic(args);
            if (!std::any_cast<std::tuple<>>(&args))
                return start_result::error(
                    exit_reason(atom("badarg"), "the template takes no start_child arguments"));
            return template_.start();
        });
        if (r.is_ok() && !r.pid())
            r = start_result::error(exit_reason(atom("bad_return"), "ok with a null pid"));
        if (r.is_ok()) progress(r.pid(), template_);
        return r;
    }

    // -- stopping --

    // OTP's shutdown/2: monitor, unlink, take an exit that already came, then exit(shutdown)
    // and wait (kill when the timeout passes) or kill at once.
    void shutdown_child(const pid& p, const child_spec& s) {
        ref mon = monitor(p);
        unlink(p);
        exit_reason result;
        bool clean = false;
        auto wait_down = [&]() {
            return erl::receive(guard([&](const down_msg& d) { return d.id == mon; },
                                      [](down_msg&& d) { return std::move(d.reason); }));
        };
        std::optional<exit_reason> early = erl::receive(
            guard([&](const exit_msg& m) { return m.from == p; },
                  [](exit_msg&& m) { return std::optional<exit_reason>(std::move(m.reason)); }),
            after(0ms, [] { return std::optional<exit_reason>(); }));
        if (early) {
            wait_down();
            result = *early;
        } else {
            shutdown_policy pol = s.effective_shutdown();
            if (pol.how == shutdown_policy::kind::brutal_kill) {
                erl::exit(p, exit_reason::kill());
                result = wait_down();
                clean = result == exit_reason::killed();
            } else {
                erl::exit(p, exit_reason::shutdown());
                std::optional<exit_reason> got;
                if (pol.how == shutdown_policy::kind::infinity) {
                    got = wait_down();
                } else {
                    got = erl::receive(
                        guard([&](const down_msg& d) { return d.id == mon; },
                              [](down_msg&& d) { return std::optional(std::move(d.reason)); }),
                        after(pol.timeout, [] { return std::optional<exit_reason>(); }));
                }
                if (!got) {
                    erl::exit(p, exit_reason::kill());
                    got = wait_down();
                }
                result = *got;
                clean = result == exit_reason::shutdown();
            }
        }
        if (!clean && !(result.is_normal() && s.restart != restart_type::permanent))
            report("shutdown_error", result, p, s);
    }

    // Static children, in reverse start order.
    void terminate_static_children() {
        for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
            if (it->current) shutdown_child(it->current, it->spec);
            it->current = pid();
            it->restarting = false;
        }
    }

    // Dynamic children all at once (OTP does the same): signal every one, then collect.
    void terminate_dynamic_children() {
        if (dynamic_.empty()) return;
        shutdown_policy pol = template_.effective_shutdown();
        std::map<ref, pid> waiting;
        for (auto& [child_pid, d] : dynamic_) {
            if (d.restarting) continue;
            const pid p = child_pid; // clang 14 cannot capture structured bindings
            ref mon = monitor(p);
            unlink(p);
            waiting.emplace(mon, p);
            bool gone = erl::receive(guard([&](const exit_msg& m) { return m.from == p; },
                                           [](exit_msg&&) { return true; }),
                                     after(0ms, [] { return false; }));
            if (gone) continue;
            erl::exit(p, pol.how == shutdown_policy::kind::brutal_kill ? exit_reason::kill()
                                                                       : exit_reason::shutdown());
        }
        dynamic_.clear();
        auto is_ours = [&](const down_msg& d) { return waiting.count(d.id) != 0; };
        auto take = [&](down_msg&& d) {
            waiting.erase(d.id);
            return true;
        };
        if (pol.how == shutdown_policy::kind::timeout) {
            const auto deadline = clock::now() + pol.timeout;
            while (!waiting.empty()) {
                auto left = std::max(clock::duration::zero(), deadline - clock::now());
                if (!erl::receive(guard(is_ours, take), after(left, [] { return false; }))) break;
            }
            for (auto& [mon, p] : waiting)
                erl::exit(p, exit_reason::kill());
        }
        while (!waiting.empty())
            erl::receive(guard(is_ours, take));
    }

    [[noreturn]] void terminate_and_exit(const exit_reason& reason) {
        if (flags_.strategy == strategy::simple_one_for_one) {
            terminate_dynamic_children();
        } else {
            terminate_static_children();
        }
        erl::exit(reason);
    }

    // -- restarts --

    // OTP's add_restart: the restart counts; more than `intensity` within `period` is too many.
    bool add_restart() {
        const auto now = clock::now();
        const auto threshold = now - flags_.period;
        while (!restarts_.empty() && restarts_.front() < threshold)
            restarts_.pop_front();
        restarts_.push_back(now);
        return restarts_.size() <= std::size_t(flags_.intensity);
    }

    [[noreturn]] void too_many_restarts(const exit_reason& last) {
        report_shutdown("shutdown", exit_reason(atom("reached_max_restart_intensity"),
                                                fmt::format("last: {}", last)));
        terminate_and_exit(exit_reason::shutdown());
    }

    child* find(atom id) {
        for (auto& c : children_)
            if (c.spec.id == id) return &c;
        return nullptr;
    }
    child* find(const pid& p) {
        if (!p) return nullptr;
        for (auto& c : children_)
            if (c.current == p) return &c;
        return nullptr;
    }
    std::size_t index_of(const child* c) const { return std::size_t(c - children_.data()); }

    void remove_child(atom id) {
        children_.erase(std::remove_if(children_.begin(), children_.end(),
                                       [id](const child& c) { return c.spec.id == id; }),
                        children_.end());
    }

    void on_exit(const exit_msg& m) {
        if (m.from == parent_) terminate_and_exit(m.reason);
        if (flags_.strategy == strategy::simple_one_for_one) {
            auto it = dynamic_.find(m.from);
            if (it == dynamic_.end() || it->second.restarting) return;
            on_dynamic_exit(it->first, m.reason);
            return;
        }
        child* c = find(m.from);
        if (!c) return; // an old child, or a process we do not know: ignored as in OTP
        const restart_type rt = c->spec.restart;
        const bool abnormal = !normal_exit(m.reason);
        if (rt == restart_type::permanent || (rt == restart_type::transient && abnormal)) {
            report("child_terminated", m.reason, m.from, c->spec);
            c->current = pid();
            restart(c->spec.id, m.reason);
            return;
        }
        if (abnormal) report("child_terminated", m.reason, m.from, c->spec);
        const bool significant = c->spec.significant;
        if (rt == restart_type::temporary) {
            remove_child(c->spec.id);
        } else {
            c->current = pid();
        }
        if (significant) check_auto_shutdown();
    }

    void on_dynamic_exit(pid p, const exit_reason& reason) {
        const restart_type rt = template_.restart;
        const bool abnormal = !normal_exit(reason);
        if (rt == restart_type::permanent || (rt == restart_type::transient && abnormal)) {
            report("child_terminated", reason, p, template_);
            restart_dynamic(p, reason);
            return;
        }
        if (abnormal) report("child_terminated", reason, p, template_);
        dynamic_.erase(p);
        if (template_.significant) check_auto_shutdown();
    }

    void check_auto_shutdown() {
        switch (flags_.auto_shutdown) {
        case auto_shutdown::never:
            return;
        case auto_shutdown::any_significant:
            break;
        case auto_shutdown::all_significant:
            if (flags_.strategy == strategy::simple_one_for_one) {
                if (!dynamic_.empty()) return;
            } else {
                for (auto& c : children_)
                    if (c.spec.significant && (c.current || c.restarting)) return;
            }
            break;
        }
        terminate_and_exit(exit_reason::shutdown());
    }

    void restart(atom id, const exit_reason& reason) {
        if (!add_restart()) too_many_restarts(reason);
        restart_group(id);
    }

    // Restarts the child `id` (and, per strategy, its siblings) after its exit.
    void restart_group(atom id) {
        child* c = find(id);
        if (!c) return;
        std::size_t from = index_of(c);
        if (flags_.strategy != strategy::one_for_one) {
            // Stop the others: all of them (one_for_all) or those started after (rest_for_one),
            // in reverse start order; temporary ones stopped this way are dropped.
            std::size_t first = flags_.strategy == strategy::one_for_all ? 0 : from + 1;
            for (std::size_t i = children_.size(); i-- > first;) {
                if (i == from) continue;
                child& o = children_[i];
                if (o.current) shutdown_child(o.current, o.spec);
                o.current = pid();
                o.restarting = false;
            }
            std::vector<atom> dropped;
            for (std::size_t i = first; i < children_.size(); ++i)
                if (i != from && children_[i].spec.restart == restart_type::temporary)
                    dropped.push_back(children_[i].spec.id);
            for (atom d : dropped)
                remove_child(d);
            c = find(id);
            from = index_of(c);
            if (flags_.strategy == strategy::one_for_all) from = 0;
        }
        const std::size_t last =
            flags_.strategy == strategy::one_for_one ? from + 1 : children_.size();
        for (std::size_t i = from; i < last; ++i) {
            child& o = children_[i];
            if (o.current) continue;
            start_result r = start_one(o.spec);
            if (r.is_error()) {
                report("start_error", r.reason(), pid(), o.spec);
                o.restarting = true;
                send(self_, try_again{self_, o.spec.id, pid()});
                return;
            }
            o.restarting = false;
            o.current = r.pid(); // null when ignored
        }
    }

    void restart_dynamic(pid old, const exit_reason& reason) {
        if (!add_restart()) too_many_restarts(reason);
        auto node = dynamic_.extract(old);
        start_result r = start_dynamic(node.mapped().args);
        if (r.is_error()) {
            report("start_error", r.reason(), pid(), template_);
            node.mapped().restarting = true;
            dynamic_.insert(std::move(node));
            send(self_, try_again{self_, atom(), old});
            return;
        }
        if (r.is_ok()) {
            node.key() = r.pid();
            node.mapped().restarting = false;
            dynamic_.insert(std::move(node));
        }
    }

    void on_try_again(const try_again& t) {
        if (flags_.strategy == strategy::simple_one_for_one) {
            auto it = dynamic_.find(t.old_child);
            if (it == dynamic_.end() || !it->second.restarting) return;
            restart_dynamic(t.old_child, exit_reason(atom("restart_failed")));
            return;
        }
        child* c = find(t.id);
        if (!c || !c->restarting) return;
        if (!add_restart()) too_many_restarts(exit_reason(atom("restart_failed")));
        restart_group(t.id);
    }

    // -- requests --

    void on_request(request_msg& r) {
        reply out = std::visit([this](auto& o) { return handle(o); }, r.request);
        erl::detail::sup_reply(r.from, r.id, std::move(out));
        if (stopping_) terminate_and_exit(*stopping_);
    }

    bool is_simple() const { return flags_.strategy == strategy::simple_one_for_one; }
    static outcome simple_error() { return outcome::error(atom("simple_one_for_one")); }

    reply handle(op_start_child& o) {
        if (is_simple()) return start_result::error(atom("simple_one_for_one"));
        if (auto bad = check_spec(o.spec)) return start_result::error(*bad);
        if (child* c = find(o.spec.id)) {
            if (c->current)
                return start_result::error(
                    exit_reason(atom("already_started"), fmt::format("{}", c->current)));
            return start_result::error(atom("already_present"));
        }
        start_result r = start_one(o.spec);
        if (r.is_error()) return r;
        if (r.is_ignore() && o.spec.restart == restart_type::temporary) return r;
        children_.push_back(child{std::move(o.spec), r.pid(), false});
        return r;
    }

    reply handle(op_start_dynamic& o) {
        if (!is_simple()) return start_result::error(atom("not_simple_one_for_one"));
        start_result r = start_dynamic(o.args);
        if (r.is_ok()) dynamic_.emplace(r.pid(), dynamic_child{std::move(o.args), false});
        return r;
    }

    reply handle(op_terminate& o) {
        if (is_simple()) {
            if (!o.child) return simple_error();
            auto it = dynamic_.find(o.child);
            if (it == dynamic_.end()) return outcome::error(atom("not_found"));
            if (!it->second.restarting) shutdown_child(o.child, template_);
            dynamic_.erase(o.child);
            return outcome::ok();
        }
        child* c = o.child ? find(o.child) : find(o.id);
        if (!c) return outcome::error(atom("not_found"));
        if (c->current) shutdown_child(c->current, c->spec);
        c->current = pid();
        c->restarting = false;
        if (c->spec.restart == restart_type::temporary) remove_child(c->spec.id);
        return outcome::ok();
    }

    reply handle(op_restart& o) {
        if (is_simple()) return start_result::error(atom("simple_one_for_one"));
        child* c = find(o.id);
        if (!c) return start_result::error(atom("not_found"));
        if (c->restarting) return start_result::error(atom("restarting"));
        if (c->current) return start_result::error(atom("running"));
        start_result r = start_one(c->spec);
        if (r.is_ok()) c->current = r.pid();
        return r;
    }

    reply handle(op_delete& o) {
        if (is_simple()) return simple_error();
        child* c = find(o.id);
        if (!c) return outcome::error(atom("not_found"));
        if (c->restarting) return outcome::error(atom("restarting"));
        if (c->current) return outcome::error(atom("running"));
        remove_child(o.id);
        return outcome::ok();
    }

    reply handle(op_which&) {
        std::vector<child_info> out;
        if (is_simple()) {
            for (auto& [p, d] : dynamic_)
                out.push_back(child_info{undefined_id, d.restarting ? pid() : p, d.restarting,
                                         template_.type});
        } else {
            for (auto& c : children_)
                out.push_back(child_info{c.spec.id, c.current, c.restarting, c.spec.type});
        }
        return out;
    }

    reply handle(op_count&) {
        child_counts n;
        auto count = [&](child_type t, bool active) {
            ++n.specs;
            if (active) ++n.active;
            if (t == child_type::supervisor) {
                ++n.supervisors;
            } else {
                ++n.workers;
            }
        };
        if (is_simple()) {
            for (auto& [p, d] : dynamic_)
                count(template_.type, !d.restarting);
        } else {
            for (auto& c : children_)
                count(c.spec.type, bool(c.current));
        }
        return n;
    }

    reply handle(op_get_spec& o) {
        if (is_simple()) {
            if (!o.child || !dynamic_.count(o.child)) return std::optional<child_spec>();
            return std::optional<child_spec>(template_);
        }
        child* c = o.child ? find(o.child) : find(o.id);
        if (!c) return std::optional<child_spec>();
        return std::optional<child_spec>(c->spec);
    }

    reply handle(op_stop& o) {
        stopping_ = o.reason;
        return std::monostate();
    }

    pid parent_;
    atom name_;
    flags flags_;
    pid self_;
    std::vector<child> children_; // start order
    child_spec template_;         // simple_one_for_one
    std::unordered_map<pid, dynamic_child> dynamic_;
    std::deque<clock::time_point> restarts_;
    std::optional<exit_reason> stopping_;
};

void supervisor_main(pid parent, atom name, flags f, std::vector<child_spec> specs) {
    process_flag(trap_exit, true);
    auto fail = [&](const exit_reason& reason) {
        // Like OTP 26's init_fail: the caller gets the error and no exit signal.
        unlink(parent);
        send(parent, start_ack{self(), start_result::error(reason)});
        erl::exit(reason);
    };
    if (name != atom()) {
        try {
            register_name(name, self());
        } catch (const badarg&) {
            auto other = whereis(name);
            fail(exit_reason(atom("already_started"), other ? fmt::format("{}", *other) : ""));
        }
    }
    supervisor_process sup(parent, name, f);
    if (auto failed = sup.init(std::move(specs))) fail(*failed);
    send(parent, start_ack{self(), start_result::ok(self())});
    sup.loop();
}

pid resolve(const sup_ref& s) {
    if (s.pid()) return s.pid();
    if (auto p = whereis(s.name())) return *p;
    throw call_failed(exit_reason::noproc());
}

reply call(const sup_ref& s, op o) {
    auto r = erl::detail::sup_call<reply>(resolve(s), std::move(o));
    if (!r.reply) throw call_failed(r.down);
    return std::move(*r.reply);
}

template <typename T>
T call_as(const sup_ref& s, op o) {
    return std::get<T>(call(s, std::move(o)));
}

} // namespace

atom supervisor_report_kind() {
    static const atom a("supervisor_report");
    return a;
}
atom progress_kind() {
    static const atom a("progress");
    return a;
}

start_result start_link(flags f, std::vector<child_spec> children) {
    return start_link(atom(), f, std::move(children));
}

start_result start_link(atom name, flags f, std::vector<child_spec> children) {
    pid parent = self();
    auto mark = mark_mailbox();
    pid sup = spawn_link(supervisor_main, parent, name, f, std::move(children));
    ref mon = monitor(sup);
    std::optional<start_result> ack;
    exit_reason down;
    receive(mark,
            guard([&](const start_ack& a) { return a.from == sup; },
                  [&](start_ack&& a) { ack.emplace(std::move(a.result)); }),
            guard([&](const down_msg& d) { return d.id == mon; },
                  [&](down_msg&& d) { down = std::move(d.reason); }));
    if (!ack) return start_result::error(down);
    if (ack->is_error()) {
        // The failed supervisor has ended when start_link returns.
        receive(guard([&](const down_msg& d) { return d.id == mon; }, [](down_msg&&) {}));
    } else {
        demonitor(mon, demonitor_option::flush);
    }
    return std::move(*ack);
}

child_spec supervisor_spec(atom id, flags f, std::vector<child_spec> children) {
    child_spec s;
    s.id = id;
    s.type = child_type::supervisor;
    s.start = [f, children = std::move(children)]() { return start_link(f, children); };
    return s;
}

start_result start_child(const sup_ref& sup, child_spec spec) {
    return call_as<start_result>(sup, op_start_child{std::move(spec)});
}

start_result detail::start_dynamic_child(const sup_ref& sup, std::any args) {
    return call_as<start_result>(sup, op_start_dynamic{std::move(args)});
}

outcome terminate_child(const sup_ref& sup, atom id) {
    return call_as<outcome>(sup, op_terminate{id, pid()});
}
outcome terminate_child(const sup_ref& sup, const pid& child) {
    return call_as<outcome>(sup, op_terminate{atom(), child});
}
start_result restart_child(const sup_ref& sup, atom id) {
    return call_as<start_result>(sup, op_restart{id});
}
outcome delete_child(const sup_ref& sup, atom id) {
    return call_as<outcome>(sup, op_delete{id});
}
std::vector<child_info> which_children(const sup_ref& sup) {
    return call_as<std::vector<child_info>>(sup, op_which{});
}
child_counts count_children(const sup_ref& sup) {
    return call_as<child_counts>(sup, op_count{});
}
std::optional<child_spec> get_childspec(const sup_ref& sup, atom id) {
    return call_as<std::optional<child_spec>>(sup, op_get_spec{id, pid()});
}
std::optional<child_spec> get_childspec(const sup_ref& sup, const pid& child) {
    return call_as<std::optional<child_spec>>(sup, op_get_spec{atom(), child});
}

void stop(const sup_ref& sup, exit_reason reason) {
    pid p = resolve(sup);
    ref mon = monitor(p);
    auto r = erl::detail::sup_call<reply>(p, op{op_stop{std::move(reason)}});
    if (!r.reply) {
        demonitor(mon, demonitor_option::flush);
        throw call_failed(r.down);
    }
    receive(guard([&](const down_msg& d) { return d.id == mon; }, [](down_msg&&) {}));
}

} // namespace erl::supervisor
