#include "dist/node_service.hpp"

#include <erl/gen.hpp>
#include <erl/gen_server.hpp>
#include <erl/link.hpp>
#include <erl/logger.hpp>
#include <erl/monitor.hpp>
#include <erl/process.hpp>
#include <erl/receive.hpp>
#include <erl/registry.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <thread>

#include "dist/cookie.hpp"
#include "dist/epmd.hpp"
#include "dist/flags.hpp"
#include "identity/node.hpp"
#include "io/tcp_internal.hpp"
#include "process/current.hpp"
#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

extern char** environ;

namespace erl::detail::dist {

namespace {

using clock = std::chrono::steady_clock;

// Asks net_kernel to start a connection process for a node that has none.
struct connect_request {
    atom node;
};

[[noreturn]] void fail_start(const std::string& why) {
    throw std::runtime_error("erl::runtime: distribution: " + why);
}

// A blocking connect to EPMD on the loopback, with a deadline.
int connect_loopback(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return fd;
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
}

void start_epmd_daemon(std::uint16_t port) {
    std::string port_text = std::to_string(port);
    std::vector<char*> argv{const_cast<char*>("epmd"), const_cast<char*>("-daemon")};
    if (port != epmd::default_port) {
        argv.push_back(const_cast<char*>("-port"));
        argv.push_back(port_text.data());
    }
    argv.push_back(nullptr);
    pid_t child = 0;
    if (::posix_spawnp(&child, "epmd", nullptr, nullptr, argv.data(), environ) != 0)
        fail_start("no EPMD answers and `epmd -daemon` cannot be run (install erlang-base)");
    int status = 0;
    ::waitpid(child, &status, 0); // -daemon forks and returns at once
}

void write_all(int fd, const byte_buffer& b) {
    std::size_t done = 0;
    while (done < b.size()) {
        ssize_t n = ::write(fd, b.data() + done, b.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_start(std::string("writing to EPMD: ") + std::strerror(errno));
        done += std::size_t(n);
    }
}

epmd::alive2_response read_alive2(int fd) {
    byte_buffer in;
    auto deadline = clock::now() + std::chrono::seconds(5);
    for (;;) {
        std::size_t used = 0;
        if (auto r = epmd::decode_alive2_response(in, used)) return *r;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) fail_start("EPMD did not answer the registration");
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, int(left.count())) <= 0) continue;
        std::uint8_t buf[64];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail_start("EPMD closed the connection during registration");
        in.insert(in.end(), buf, buf + n);
    }
}

std::mutex& rpc_mutex() {
    static std::mutex m;
    return m;
}
std::map<std::pair<std::string, std::string>, rpc_function, std::less<>>& rpc_table() {
    static std::map<std::pair<std::string, std::string>, rpc_function, std::less<>> t;
    return t;
}

void net_kernel_main(node_service* svc) {
    register_name(atom("net_kernel"), self());
    // Connection processes link to us (as OTP's connection controllers link to net_kernel):
    // their ends are exit messages here, never our end.
    process_flag(trap_exit, true);
    static const atom gen_call("$gen_call"), is_auth("is_auth");
    for (;;) {
        receive(
            [&](const connect_request& r) {
                pid c = spawn_in(&svc->rt, spawn_options{.system = true}, &connection_main, svc,
                                 r.node, tcp::socket());
                (void)c;
            },
            [&](const term& t) {
                // gen_server:call(net_kernel, {is_auth, Node}): net_adm:ping.
                if (t.is_tagged_tuple(gen_call, 3) && t[1].is_tuple(2) && t[1][0].is_pid() &&
                    t[2].is_tuple(2) && t[2][0].is_atom(is_auth))
                    detail::send_term_reply(t[1][0].as_pid(), t[1][1], term(atom("yes")));
            },
            [](any_message) {});
    }
}

void acceptor_main(node_service* svc, int fd) {
    tcp::listener l = adopt_listener_fd(fd);
    for (;;) {
        tcp::socket s = l.accept();
        pid c = spawn_in(&svc->rt, spawn_options{.system = true}, &connection_main, svc, atom(), s);
        s.controlling_process(c);
        send(c, dist_go{});
    }
}

template <typename T>
envelope_ptr message_of(T value) {
    return make_message<T>(std::move(value));
}

} // namespace

node_service::node_service(runtime_impl& r, const distribution_options& o) : rt(r), options(o) {
    std::string full = o.name;
    auto mode = o.long_names ? name_mode::long_names : name_mode::short_names;
    if (full.find('@') == std::string::npos) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        std::string h(host);
        if (!o.long_names) h = h.substr(0, h.find('.'));
        full += "@" + h;
    }
    try {
        name = parse_node_name(full, mode);
        cookie = find_cookie(o.cookie);
    } catch (const std::exception& e) {
        fail_start(e.what());
    }
    flags = dflag::erlcpp_default | (o.hidden ? 0 : dflag::published);
    epmd_port = o.epmd_port ? o.epmd_port : epmd::port_from_environment();
    decode_limits.atom_table_limit = std::size_t(1) << 20;

    // Listen first: EPMD wants our port.
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(o.port);
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    socklen_t len = sizeof a;
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 ||
        ::listen(listen_fd_, 128) < 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) < 0) {
        int e = errno;
        if (listen_fd_ >= 0) ::close(listen_fd_);
        fail_start(fmt::format("cannot listen on port {}: {}", o.port, std::strerror(e)));
    }
    listen_port = ntohs(a.sin_port);

    // Register with EPMD (starting one if none runs, as erl does) and keep the socket open.
    epmd_fd_ = connect_loopback(epmd_port);
    if (epmd_fd_ < 0 && o.start_epmd) {
        start_epmd_daemon(epmd_port);
        auto until = clock::now() + std::chrono::seconds(5);
        while (epmd_fd_ < 0 && clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            epmd_fd_ = connect_loopback(epmd_port);
        }
    }
    if (epmd_fd_ < 0) {
        ::close(listen_fd_);
        fail_start(fmt::format("no EPMD on port {}", epmd_port));
    }
    epmd::alive2_request req;
    req.port = listen_port;
    req.name = name.alive;
    try {
        write_all(epmd_fd_, epmd::encode_alive2_request(req));
        auto resp = read_alive2(epmd_fd_);
        if (resp.result != 0)
            fail_start(fmt::format("EPMD refused the name {} (taken?)", name.alive));
        creation = resp.creation;
    } catch (...) {
        ::close(epmd_fd_);
        ::close(listen_fd_);
        throw;
    }
    node = atom(name.full());
    rt.set_identity(node, creation);
    add_local_node(node);
}

node_service::~node_service() {
    remove_local_node(node);
    if (epmd_fd_ >= 0) ::close(epmd_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
}

void node_service::start() {
    net_kernel_ = spawn_in(&rt, spawn_options{.system = true}, &net_kernel_main, this);
    int fd = std::exchange(listen_fd_, -1);
    spawn_in(&rt, spawn_options{.system = true}, &acceptor_main, this, fd);
}

handshake_config node_service::handshake_settings() const {
    handshake_config c;
    c.node = name.full();
    c.creation = creation;
    c.cookie = cookie;
    c.flags = flags;
    return c;
}

void node_service::route(const pid& sender, const pid& to, envelope_ptr e,
                         message_to_term convert) {
    control_message m;
    std::optional<term> payload;
    switch (e->kind()) {
    case signal_kind::message:
        if (!convert) return; // checked by erl::send; a raw signal without one is dropped
        m = ctl::send{sender, to};
        payload = convert(*e);
        break;
    case signal_kind::exit: {
        auto& s = static_cast<exit_signal&>(*e);
        if (s.via_link) {
            m = ctl::exit{s.from, to, to_term(s.reason)};
        } else {
            m = ctl::exit2{s.from, to, to_term(s.reason)};
        }
        break;
    }
    case signal_kind::link:
        m = ctl::link{static_cast<link_signal&>(*e).from, to};
        break;
    case signal_kind::unlink: {
        static std::atomic<std::uint64_t> ids{std::random_device{}() | 1};
        m = ctl::unlink_id{ids.fetch_add(1) | 1, static_cast<link_signal&>(*e).from, to};
        break;
    }
    case signal_kind::monitor: {
        auto& s = static_cast<monitor_signal&>(*e);
        m = ctl::monitor_p{s.from, to, s.id};
        break;
    }
    case signal_kind::demonitor: {
        auto& s = static_cast<monitor_signal&>(*e);
        m = ctl::demonitor_p{s.from, to, s.id};
        break;
    }
    case signal_kind::down: {
        auto& d = static_cast<message_envelope<down_msg>&>(*e).value;
        m = ctl::monitor_p_exit{d.process, to, d.id, to_term(d.reason)};
        break;
    }
    default:
        return; // introspection of remote processes is not supported: the asker times out
    }
    route_control(to.node(), std::move(m), std::move(payload));
}

void node_service::route_control(atom peer, control_message m, std::optional<term> payload) {
    dist_out out{std::move(m), std::move(payload)};
    for (;;) {
        pid target;
        {
            std::lock_guard lock(mutex_);
            entry& e = table_[peer];
            if (!e.process) {
                // No connection process yet: keep the signal for it, in order, and have
                // net_kernel start one (spawning here could be from any context, even a
                // dying process).
                e.pending.push_back(std::move(out));
                if (!e.requested) {
                    e.requested = true;
                    send_signal(rt, net_kernel_, message_of(connect_request{peer}));
                }
                return;
            }
            target = e.process;
        }
        if (send_signal(rt, target, message_of(out))) return;
        // The connection process ended just now: forget it and go the way of a fresh attempt.
        std::lock_guard lock(mutex_);
        auto it = table_.find(peer);
        if (it != table_.end() && it->second.process == target) table_.erase(it);
    }
}

handshake_status node_service::claim_incoming(atom peer, const pid& me) {
    std::lock_guard lock(mutex_);
    auto it = table_.find(peer);
    if (it == table_.end() || !it->second.process) {
        entry& e = table_[peer];
        e.process = me;
        e.initiated = false;
        return handshake_status::ok;
    }
    entry& e = it->second;
    if (e.up) return handshake_status::alive;
    if (!e.initiated) return handshake_status::nok;
    handshake_status s = simultaneous_answer(name.full(), peer.name());
    if (s == handshake_status::ok_simultaneous) {
        // Our own attempt gives way: it hands what it holds to `me` when it ends.
        e.process = me;
        e.initiated = false;
    }
    return s;
}

std::vector<dist_out> node_service::connection_up(atom peer, const pid& me, std::uint64_t f,
                                                  bool& superseded) {
    std::vector<dist_out> pending;
    std::vector<pid> all;
    {
        std::lock_guard lock(mutex_);
        entry& e = table_[peer];
        superseded = e.process && e.process != me;
        if (superseded) return {};
        e.process = me;
        e.up = true;
        e.flags = f;
        e.requested = false;
        pending = std::exchange(e.pending, {});
        all = all_watchers_;
    }
    notify_watchers(all, nodeup{peer});
    return pending;
}

std::vector<dist_out> node_service::take_pending(atom peer, const pid& me) {
    std::lock_guard lock(mutex_);
    auto it = table_.find(peer);
    if (it == table_.end()) return {};
    entry& e = it->second;
    if (!e.process) e.process = me;
    if (e.process != me) return {};
    e.initiated = true;
    e.requested = false;
    return std::exchange(e.pending, {});
}

std::pair<std::vector<dist_out>, pid> node_service::connection_down(atom peer, const pid& me) {
    std::vector<dist_out> left;
    pid successor;
    std::vector<pid> watchers;
    {
        std::lock_guard lock(mutex_);
        auto it = table_.find(peer);
        if (it != table_.end()) {
            if (it->second.process == me) {
                left = std::move(it->second.pending);
                bool was_up = it->second.up;
                table_.erase(it);
                if (auto w = watchers_.find(peer); w != watchers_.end()) {
                    watchers = std::move(w->second);
                    watchers_.erase(w);
                }
                if (was_up)
                    watchers.insert(watchers.end(), all_watchers_.begin(), all_watchers_.end());
            } else if (it->second.process) {
                successor = it->second.process;
            }
        }
    }
    notify_watchers(watchers, nodedown{peer});
    return {std::move(left), successor};
}

pid node_service::connection_for(atom peer) {
    {
        std::lock_guard lock(mutex_);
        auto it = table_.find(peer);
        if (it != table_.end() && it->second.process) return it->second.process;
        entry& e = table_[peer];
        if (e.requested) return pid();
        e.requested = true;
    }
    send_signal(rt, net_kernel_, message_of(connect_request{peer}));
    return pid();
}

bool node_service::is_up(atom peer) {
    std::lock_guard lock(mutex_);
    auto it = table_.find(peer);
    return it != table_.end() && it->second.up;
}

std::optional<pid> node_service::existing_connection(atom peer) {
    std::lock_guard lock(mutex_);
    auto it = table_.find(peer);
    if (it == table_.end() || !it->second.process) return std::nullopt;
    return it->second.process;
}

std::vector<atom> node_service::connected() {
    std::lock_guard lock(mutex_);
    std::vector<atom> out;
    for (auto& [n, e] : table_)
        if (e.up) out.push_back(n);
    return out;
}

template <typename Event>
void node_service::notify_watchers(const std::vector<pid>& watchers, const Event& event) {
    std::vector<pid> gone;
    for (const pid& w : watchers)
        if (!send_signal(rt, w, message_of(event))) gone.push_back(w);
    if (gone.empty()) return;
    std::lock_guard lock(mutex_);
    std::erase_if(all_watchers_, [&](const pid& w) {
        return std::find(gone.begin(), gone.end(), w) != gone.end();
    });
}

void node_service::watch_all_nodes(const pid& watcher, bool on) {
    std::lock_guard lock(mutex_);
    auto it = std::find(all_watchers_.begin(), all_watchers_.end(), watcher);
    if (on && it == all_watchers_.end()) all_watchers_.push_back(watcher);
    if (!on && it != all_watchers_.end()) all_watchers_.erase(it);
}

void node_service::add_node_watcher(atom peer, const pid& watcher, bool on) {
    bool connect = false;
    {
        std::lock_guard lock(mutex_);
        auto& v = watchers_[peer];
        if (on) {
            v.push_back(watcher);
            auto it = table_.find(peer);
            connect = it == table_.end() || !it->second.process;
        } else if (auto it = std::find(v.begin(), v.end(), watcher); it != v.end()) {
            v.erase(it);
        }
    }
    if (connect) connection_for(peer); // a failed attempt reports nodedown
}

void node_service::activate_alias(const ref& alias, const pid& owner) {
    std::lock_guard lock(alias_mutex_);
    aliases_[alias] = owner;
}

void node_service::deactivate_alias(const ref& alias) {
    std::lock_guard lock(alias_mutex_);
    aliases_.erase(alias);
}

std::optional<pid> node_service::alias_owner(const ref& alias) {
    std::lock_guard lock(alias_mutex_);
    auto it = aliases_.find(alias);
    if (it == aliases_.end()) return std::nullopt;
    return it->second;
}

node_service* service_of(runtime_impl& r) noexcept {
    return static_cast<node_service*>(r.remote.get());
}

node_service& require_service(const char* operation) {
    auto& p = require_process(operation);
    auto* s = service_of(*p.rt);
    if (!s)
        throw std::logic_error(fmt::format(
            "{}: this runtime is not a distributed node (runtime_options::distribution)",
            operation));
    return *s;
}

std::optional<rpc_function> find_rpc(std::string_view module, std::string_view function) {
    std::lock_guard lock(rpc_mutex());
    auto& t = rpc_table();
    auto it = t.find(std::pair<std::string, std::string>(module, function));
    if (it == t.end()) return std::nullopt;
    return it->second;
}

std::unique_ptr<remote_router> make_node_service(runtime_impl& rt, const distribution_options& o) {
    return std::make_unique<node_service>(rt, o);
}

void start_node_service(runtime_impl& rt) {
    if (auto* s = service_of(rt)) s->start();
}

} // namespace erl::detail::dist

namespace erl {

namespace detail {
void send_term_reply(const pid& caller, const term& tag, term reply) {
    static const atom alias("alias");
    term msg = term::tuple_from({tag, std::move(reply)});
    process_control* p = current_process();
    dist::node_service* svc = p ? dist::service_of(*p->rt) : nullptr;
    // OTP 24+ callers tag calls [alias|Ref]: answer through the alias, so that a reply after
    // the caller gave up is dropped by its node instead of landing in its mailbox.
    if (svc && !caller.is_local() && tag.is_cons() && tag.size() == 1 && tag[0].is_atom(alias) &&
        tag.tail().is_ref()) {
        svc->route_control(caller.node(), dist::ctl::alias_send{p->self_pid(), tag.tail().as_ref()},
                           std::move(msg));
        return;
    }
    send(caller, std::move(msg));
}

} // namespace detail

using namespace detail;
using namespace detail::dist;

atom node() {
    process_control* p = current_process();
    return p ? p->rt->node : atoms::nonode_nohost;
}

std::vector<atom> nodes() {
    process_control* p = current_process();
    node_service* s = p ? service_of(*p->rt) : nullptr;
    return s ? s->connected() : std::vector<atom>{};
}

bool connect_node(atom peer) {
    auto& s = require_service("erl::connect_node");
    if (peer == s.node) return true;
    if (s.is_up(peer)) return true;
    s.connection_for(peer);
    // Wait for the outcome: up, or the attempt's end (its nodedown).
    monitor_node(peer, true);
    auto deadline = clock::now() + s.options.setup_time + std::chrono::seconds(1);
    for (;;) {
        if (s.is_up(peer)) {
            monitor_node(peer, false);
            return true;
        }
        bool down = receive(guard([&](const nodedown& d) { return d.node == peer; },
                                  [](const nodedown&) { return true; }),
                            after(std::chrono::milliseconds(5), [] { return false; }));
        if (down || clock::now() >= deadline) {
            if (!down) monitor_node(peer, false);
            return s.is_up(peer);
        }
    }
}

bool disconnect_node(atom peer) {
    auto& s = require_service("erl::disconnect_node");
    auto c = s.existing_connection(peer);
    if (!c) return false;
    send(*c, dist_close{});
    return true;
}

void monitor_nodes(bool on) {
    auto& s = require_service("erl::monitor_nodes");
    s.watch_all_nodes(self(), on);
}

void monitor_node(atom peer, bool on) {
    auto& s = require_service("erl::monitor_node");
    s.add_node_watcher(peer, self(), on);
}

void detail::send_to_remote_name(const remote_name& to, term message) {
    auto& p = require_process("erl::send");
    if (to.node == p.rt->node) {
        if (auto target = whereis(to.name)) send(*target, std::move(message));
        return;
    }
    auto& s = require_service("erl::send");
    s.route_control(to.node, ctl::reg_send{p.self_pid(), term(to.name)}, std::move(message));
    count_reduction(p);
}

ref monitor(const remote_name& target) {
    auto& p = require_process("erl::monitor");
    if (target.node == p.rt->node) return monitor(target.name);
    auto& s = require_service("erl::monitor");
    handle_signals(p);
    ref id = make_ref();
    signals_of(p).monitoring.emplace(id, name_placeholder(target.node));
    count_monitors(p, 1);
    s.route_control(target.node, ctl::monitor_p{p.self_pid(), term(target.name), id});
    return id;
}

term detail::remote_term_call(const server_ref& srv, term request,
                              std::chrono::milliseconds timeout, bool infinite) {
    static const atom gen_call("$gen_call"), alias("alias"), nodedown_atom("nodedown");
    auto& p = require_process("erl::call");
    auto& s = require_service("erl::call");
    atom peer = srv.by_name() ? srv.node() : srv.pid_value().node();
    auto mark = mark_mailbox();
    ref mref = srv.by_name() ? monitor(remote_name{srv.name(), peer}) : monitor(srv.pid_value());
    // Tag [alias|Mref], as OTP 24+: the reply comes through the alias, and one that comes after
    // the timeout finds the alias gone and is dropped by this node, never queued.
    term tag = term::list_from({term(alias)}, term(mref));
    s.activate_alias(mref, p.self_pid());
    struct alias_guard {
        node_service& s;
        ref id;
        ~alias_guard() { s.deactivate_alias(id); }
    } alias_scope{s, mref};
    term message = term::tuple_from(
        {term(gen_call), term::tuple_from({term(p.self_pid()), tag}), std::move(request)});
    if (srv.by_name()) {
        s.route_control(peer, ctl::reg_send{p.self_pid(), term(srv.name())}, std::move(message));
    } else {
        send(srv.pid_value(), std::move(message));
    }
    std::optional<term> reply;
    std::optional<exit_reason> down;
    auto is_reply = [&](const term& t) { return t.is_tuple(2) && t[0] == tag; };
    auto on_reply = [&](term t) { reply = t[1]; };
    auto is_down = [&](const down_msg& d) { return d.id == mref; };
    auto on_down = [&](down_msg d) { down = std::move(d.reason); };
    if (infinite) {
        receive(mark, guard(is_reply, on_reply), guard(is_down, on_down));
    } else {
        receive(mark, guard(is_reply, on_reply), guard(is_down, on_down), after(timeout));
    }
    if (down) {
        if (down->tag() == atoms::noconnection)
            throw call_error("call", exit_reason(nodedown_atom, std::string(peer.name())));
        throw call_error("call", *down);
    }
    demonitor(mref, demonitor_option::flush);
    if (!reply) throw call_error("call", exit_reason(atom("timeout")));
    return std::move(*reply);
}

void detail::remote_term_cast(const server_ref& srv, term request) {
    static const atom gen_cast("$gen_cast");
    term message = term::tuple_from({term(gen_cast), std::move(request)});
    if (srv.by_name()) {
        send(remote_name{srv.name(), srv.node()}, std::move(message));
    } else {
        send(srv.pid_value(), std::move(message));
    }
}

void register_rpc(atom module, atom function, rpc_function fn) {
    std::lock_guard lock(rpc_mutex());
    rpc_table()[{std::string(module.name()), std::string(function.name())}] = std::move(fn);
}

} // namespace erl
