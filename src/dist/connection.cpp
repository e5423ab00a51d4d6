// A connection process: one per connected node. It dials (or takes an accepted socket), runs the
// handshake, then reads packets (active mode: socket data and signals to send arrive in one
// receive) and writes the control messages that processes of this node route to it. It keeps
// what crosses the connection (links, monitors both ways) so that when the connection goes,
// every local process concerned hears noconnection, as in Erlang.
#include <erl/link.hpp>
#include <erl/logger.hpp>
#include <erl/monitor.hpp>
#include <erl/process.hpp>
#include <erl/receive.hpp>
#include <erl/registry.hpp>
#include <erl/timer.hpp>

#include <map>
#include <set>

#include "dist/epmd.hpp"
#include "dist/flags.hpp"
#include "dist/framing.hpp"
#include "dist/node_service.hpp"
#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl::detail::dist {

namespace {

using clock = std::chrono::steady_clock;

struct tick_due {};

void dist_log(log_level level, std::string text) {
    log_event e;
    e.level = level;
    e.kind = atom("dist");
    e.text = std::move(text);
    log(e);
}

class connection_lost : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

std::string_view text_of(const byte_buffer& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

class connection {
  public:
    connection(node_service& svc, atom peer, tcp::socket accepted)
        : svc_(svc), rt_(svc.rt), peer_(peer), sock_(accepted), self_(erl::self()),
          reader_(svc.options.max_packet) {}

    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    ~connection() { cleanup(); }

    void run() {
        // Bound to net_kernel: if it goes, so do the connections (it traps our exits).
        if (pid nk = svc_.net_kernel()) link(nk);
        auto deadline = clock::now() + svc_.options.setup_time;
        if (sock_) {
            // The acceptor hands the socket over first, then says so.
            receive([](const dist_go&) {}, after(svc_.options.setup_time, [] {}));
            handshake_as(handshake::accept(svc_.handshake_settings()), deadline);
        } else {
            std::vector<dist_out> first = svc_.take_pending(peer_, self_);
            auto owner = svc_.existing_connection(peer_);
            if (!owner) return; // nothing wants this node any more
            if (*owner != self_) {
                forward_to(*owner, first);
                return; // another process handles this node
            }
            held_ = std::move(first);
            dial(deadline);
            handshake_as(handshake::initiate(svc_.handshake_settings(), peer_.str()), deadline);
        }
        bool superseded = false;
        auto queued = svc_.connection_up(peer_, self_, flags_, superseded);
        if (superseded) return; // simultaneous connect: the other connection took over
        up_ = true;
        dist_log(log_level::info, fmt::format("connected to node {} ({})", peer_, sock_.peer()));
        for (auto& o : held_)
            write_out(o);
        held_.clear();
        for (auto& o : queued)
            write_out(o);
        flush();
        loop();
    }

  private:
    // --- setting up ---

    void dial(clock::time_point deadline) {
        node_name pn = parse_node_name(peer_.name(), mode_of(svc_.name));
        tcp::socket epmd_sock = tcp::connect(pn.host, svc_.epmd_port, left(deadline));
        auto req = epmd::encode_port_please2_request(pn.alive);
        epmd_sock.write(text_of(req), left(deadline));
        byte_buffer in;
        std::optional<epmd::port2_response> r;
        while (!r) {
            std::string chunk;
            try {
                chunk = epmd_sock.read(0, left(deadline));
            } catch (const io_error& e) {
                if (!e.is_closed()) throw;
            }
            in.insert(in.end(), chunk.begin(), chunk.end());
            std::size_t used = 0;
            r = epmd::decode_port2_response(in, used);
            if (!r && chunk.empty()) throw connection_lost("EPMD closed without an answer");
        }
        epmd_sock.close();
        if (r->result != 0)
            throw connection_lost(fmt::format("node {} is not registered with EPMD", peer_));
        if (!r->speaks_version_6())
            throw connection_lost(fmt::format("node {} does not speak distribution 6", peer_));
        sock_ = tcp::connect(pn.host, r->port, left(deadline), {.nodelay = true});
    }

    void handshake_as(handshake hs, clock::time_point deadline) {
        sock_.set_nodelay(true);
        auto send_output = [&] {
            auto out = hs.take_output();
            if (!out.empty()) sock_.write(text_of(out), left(deadline));
        };
        send_output();
        while (hs.current() == handshake::state::in_progress ||
               hs.current() == handshake::state::awaiting_status) {
            if (hs.current() == handshake::state::awaiting_status) {
                peer_ = atom(hs.peer().node);
                hs.answer(svc_.claim_incoming(peer_, self_));
                send_output();
                continue;
            }
            std::string data = sock_.read(0, left(deadline));
            hs.feed({reinterpret_cast<const std::uint8_t*>(data.data()), data.size()});
            send_output();
        }
        if (hs.current() == handshake::state::failed)
            throw connection_lost(fmt::format("handshake with {} failed: {} ({})",
                                              peer_ == atom() ? atom("?") : peer_,
                                              to_string(hs.failure()), hs.failure_reason()));
        peer_ = atom(hs.peer().node);
        flags_ = hs.negotiated_flags();
        nodes_ = {svc_.node, peer_};
        auto rest = hs.take_leftover();
        if (!rest.empty()) reader_.feed(rest);
    }

    static timeout left(clock::time_point deadline) {
        auto d = deadline - clock::now();
        if (d <= clock::duration::zero())
            throw connection_lost("connection setup timed out (net_setuptime)");
        return d;
    }

    // --- connected ---

    void loop() {
        last_in_ = last_out_ = clock::now();
        // A tick after a quarter of net_ticktime without traffic (at least every second).
        auto tick_every = std::max<clock::duration>(
            std::chrono::duration_cast<clock::duration>(svc_.options.net_ticktime) / 4,
            std::chrono::seconds(1));
        send_after(tick_every, self_, tick_due{});
        sock_.set_active(tcp::active::n(64));
        packets();
        for (;;) {
            bool go_on = receive(
                [&](tcp_data& d) {
                    last_in_ = clock::now();
                    reader_.feed(
                        {reinterpret_cast<const std::uint8_t*>(d.data.data()), d.data.size()});
                    packets();
                    return true;
                },
                [&](const tcp_passive&) {
                    sock_.set_active(tcp::active::n(64));
                    return true;
                },
                [&](dist_out& o) {
                    write_out(o);
                    drain_outgoing();
                    flush();
                    return true;
                },
                [&](const tick_due&) {
                    auto now = clock::now();
                    if (now - last_in_ > svc_.options.net_ticktime) {
                        reason_ = "net_tick_timeout";
                        return false;
                    }
                    if (now - last_out_ >= tick_every) {
                        auto t = tick_packet();
                        sock_.write(text_of(t), svc_.options.net_ticktime);
                        last_out_ = now;
                    }
                    send_after(tick_every, self_, tick_due{});
                    return true;
                },
                [&](const tcp_closed&) {
                    reason_ = "closed by the peer";
                    return false;
                },
                [&](const tcp_error& e) {
                    reason_ = fmt::format("socket error {}", e.reason);
                    return false;
                },
                [&](const dist_close&) {
                    reason_ = "disconnected";
                    return false;
                },
                [](any_message) { return true; });
            if (!go_on) return;
        }
    }

    // Writes more control messages queued behind the first in one go.
    void drain_outgoing() {
        for (int i = 0; i < 256; ++i) {
            bool more = receive(
                [&](dist_out& o) {
                    write_out(o);
                    return true;
                },
                after(std::chrono::milliseconds(0), [] { return false; }));
            if (!more) return;
        }
    }

    void flush() {
        if (out_.empty()) return;
        sock_.write(text_of(out_), svc_.options.net_ticktime);
        out_.clear();
        last_out_ = clock::now();
    }

    // Keeps the books on what crosses the connection, then encodes.
    void write_out(dist_out& o) {
        std::visit(
            [&](auto& c) {
                using C = std::decay_t<decltype(c)>;
                if constexpr (std::is_same_v<C, ctl::link>) {
                    links_.insert({c.from, c.to});
                } else if constexpr (std::is_same_v<C, ctl::unlink_id>) {
                    links_.erase({c.from, c.to});
                } else if constexpr (std::is_same_v<C, ctl::exit>) {
                    links_.erase({c.from, c.to});
                } else if constexpr (std::is_same_v<C, ctl::monitor_p>) {
                    out_monitors_[c.id] = {c.from, c.to};
                } else if constexpr (std::is_same_v<C, ctl::demonitor_p>) {
                    auto it = out_monitors_.find(c.id);
                    if (it != out_monitors_.end()) {
                        c.to = it->second.second; // the name, for a monitor by name
                        out_monitors_.erase(it);
                    }
                } else if constexpr (std::is_same_v<C, ctl::monitor_p_exit>) {
                    in_monitors_.erase(c.id);
                }
            },
            o.control);
        byte_buffer b = encode_packet(o.control, flags_, std::move(o.payload));
        out_.insert(out_.end(), b.begin(), b.end());
        if (out_.size() > 256 * 1024) flush();
    }

    void send_now(control_message m, std::optional<term> payload = {}) {
        dist_out o{std::move(m), std::move(payload)};
        write_out(o);
    }

    void packets() {
        while (auto body = reader_.next()) {
            if (body->empty()) continue; // a tick
            incoming in = decode_packet(*body, nodes_, svc_.decode_limits);
            dispatch(in);
        }
        flush();
    }

    template <typename T>
    void signal(const pid& to, T* raw) {
        send_signal(rt_, to, envelope_ptr(raw));
    }

    std::optional<pid> local_target(const process_id& id) {
        if (auto* p = std::get_if<pid>(&id)) return *p;
        if (auto name = existing_atom(std::get<term>(id))) return whereis(*name);
        return std::nullopt;
    }

    void deliver(const pid& to, term message) {
        send_signal(rt_, to, make_message<term>(std::move(message)));
    }

    void dispatch(incoming& in) {
        std::visit([&](auto& c) { on(c, in); }, in.control);
    }

    void on(ctl::send& c, incoming& in) { deliver(c.to, std::move(*in.payload)); }
    void on(ctl::reg_send& c, incoming& in) {
        if (auto name = existing_atom(c.to_name))
            if (auto to = whereis(*name)) deliver(*to, std::move(*in.payload));
    }
    void on(ctl::alias_send& c, incoming& in) {
        // A reply to one of our calls through its alias; dropped once the call is over.
        if (auto owner = svc_.alias_owner(c.alias)) deliver(*owner, std::move(*in.payload));
    }
    void on(ctl::link& c, incoming&) {
        if (send_signal(rt_, c.to, envelope_ptr(new link_signal(c.from, signal_kind::link)))) {
            links_.insert({c.to, c.from});
        } else {
            send_now(ctl::exit{c.to, c.from, term(atoms::noproc)});
        }
    }
    void on(ctl::unlink& c, incoming&) {
        signal(c.to, new link_signal(c.from, signal_kind::unlink));
        links_.erase({c.to, c.from});
    }
    void on(ctl::unlink_id& c, incoming&) {
        signal(c.to, new link_signal(c.from, signal_kind::unlink));
        links_.erase({c.to, c.from});
        send_now(ctl::unlink_id_ack{c.id, c.to, c.from});
    }
    void on(ctl::unlink_id_ack&, incoming&) {}
    void on(ctl::exit& c, incoming&) {
        links_.erase({c.to, c.from});
        signal(c.to, new exit_signal(c.from, from_term<exit_reason>(c.reason), true));
    }
    void on(ctl::exit2& c, incoming&) {
        signal(c.to, new exit_signal(c.from, from_term<exit_reason>(c.reason), false));
    }
    void on(ctl::group_leader&, incoming&) {}
    void on(ctl::monitor_p& c, incoming&) {
        auto target = local_target(c.to);
        if (target &&
            send_signal(rt_, *target,
                        envelope_ptr(new monitor_signal(c.from, c.id, signal_kind::monitor)))) {
            in_monitors_[c.id] = {c.from, *target};
            return;
        }
        // Nobody there: DOWN noproc at once, naming what was monitored (pid or name).
        send_now(ctl::monitor_p_exit{c.to, c.from, c.id, term(atoms::noproc)});
    }
    void on(ctl::demonitor_p& c, incoming&) {
        auto it = in_monitors_.find(c.id);
        if (it == in_monitors_.end()) return;
        signal(it->second.second, new monitor_signal(c.from, c.id, signal_kind::demonitor));
        in_monitors_.erase(it);
    }
    void on(ctl::monitor_p_exit& c, incoming&) {
        auto it = out_monitors_.find(c.id);
        if (it != out_monitors_.end()) out_monitors_.erase(it);
        send_down(c.to, c.id, c.from, from_term<exit_reason>(c.reason));
    }

    // A DOWN to a local watcher of `target` on the peer (a pid, or a name: then the stand-in pid
    // of that node and the name, as Erlang's {Name, Node}).
    void send_down(const pid& watcher, const ref& id, const process_id& target,
                   exit_reason reason) {
        down_msg d{id, name_placeholder(peer_), std::move(reason), atom()};
        if (auto* p = std::get_if<pid>(&target)) {
            d.process = *p;
        } else if (auto name = existing_atom(std::get<term>(target))) {
            d.name = *name;
        }
        send_signal(rt_, watcher, make_down_signal(std::move(d)));
    }
    void on(ctl::spawn_reply&, incoming&) {}
    void on(ctl::spawn_request& c, incoming& in) {
        static const atom erpc("erpc"), execute_call("execute_call"), monitor_opt("monitor"),
            notsup("notsup");
        const term& args = *in.payload;
        bool monitor = false, other = false;
        for (const term& o : c.options.elements()) {
            if (o.is_atom(monitor_opt)) {
                monitor = true;
            } else {
                other = true; // link and the rest: not offered
            }
        }
        if (other || !c.module.is_atom(erpc) || !c.function.is_atom(execute_call) || c.arity != 4 ||
            !args.is_proper_list() || args.size() != 4) {
            send_now(ctl::spawn_reply{c.id, c.from, 0, term(notsup)});
            return;
        }
        pid worker = spawn_in(&rt_, spawn_options{.system = true}, &run_rpc, &svc_, c.from, c.id,
                              monitor, args);
        send_now(ctl::spawn_reply{c.id, c.from, monitor ? 2u : 0u, term(worker)});
    }

    // erpc:execute_call(Res, M, F, A) done in C++: the result travels as the exit reason of the
    // "spawned process", through the monitor the request asked for.
    static void run_rpc(node_service* svc, pid caller, ref id, bool monitor, term args) {
        static const atom ret("return"), error("error"), undef("undef"), exception("exception");
        const term& res = args[0];
        const term& m = args[1];
        const term& f = args[2];
        const term& a = args[3];
        term reason;
        std::optional<rpc_function> fn;
        if (m.is_atom() && f.is_atom() && a.is_proper_list())
            fn = find_rpc(m.atom_name(), f.atom_name());
        if (!fn) {
            term frame = term::tuple_from({m, f, a, term::list_from({})});
            reason = term::tuple_from({res, term(error), term(undef), term::list_from({frame})});
        } else {
            std::vector<term> argv(a.elements().begin(), a.elements().end());
            try {
                reason = term::tuple_from({res, term(ret), (*fn)(argv)});
            } catch (...) {
                exit_reason why = exit_reason::from_exception(std::current_exception());
                reason = term::tuple_from({res, term(error), to_term(why), term::list_from({})});
            }
        }
        if (monitor)
            svc->route_control(caller.node(),
                               ctl::monitor_p_exit{erl::self(), caller, id, std::move(reason)});
    }

    // --- the end ---

    static void forward_to(const pid& owner, std::vector<dist_out>& items) {
        for (auto& o : items)
            send(owner, std::move(o));
        items.clear();
    }

    // Answers a signal that can no longer reach the peer, as Erlang does for a dead connection.
    void answer_unreachable(dist_out& o) {
        std::visit(
            [&](auto& c) {
                using C = std::decay_t<decltype(c)>;
                if constexpr (std::is_same_v<C, ctl::link>) {
                    signal(c.from, new exit_signal(c.to, exit_reason::noconnection(), true));
                } else if constexpr (std::is_same_v<C, ctl::monitor_p>) {
                    send_down(c.from, c.id, c.to, exit_reason::noconnection());
                }
            },
            o.control);
    }

    void cleanup() noexcept {
        try {
            if (!reason_.empty() || up_) {
                dist_log(log_level::info,
                         fmt::format("connection to node {} down: {}", peer_,
                                     reason_.empty() ? std::string("ended") : reason_));
            }
            std::vector<dist_out> left = std::move(held_);
            pid successor;
            if (peer_ != atom()) {
                auto [queued, next] = svc_.connection_down(peer_, self_);
                successor = next;
                for (auto& o : queued)
                    left.push_back(std::move(o));
            }
            // Signals still in our mailbox never made it out.
            process_control& p = *current_process();
            for (envelope* e = p.messages.front(); e;) {
                envelope* next = e->next;
                if (e->type() == type_key_of<dist_out>()) {
                    p.messages.remove(e);
                    left.push_back(std::move(static_cast<message_envelope<dist_out>*>(e)->value));
                    e->destroy();
                }
                e = next;
            }
            if (successor) {
                for (auto& o : left)
                    send_signal(rt_, successor, make_message<dist_out>(std::move(o)));
            } else {
                for (auto& o : left)
                    answer_unreachable(o);
            }
            // Everything across the connection ends with noconnection.
            for (auto& [local, remote] : links_)
                signal(local, new exit_signal(remote, exit_reason::noconnection(), true));
            for (auto& [id, watch] : out_monitors_)
                send_down(watch.first, id, watch.second, exit_reason::noconnection());
            for (auto& [id, watch] : in_monitors_)
                signal(watch.second, new monitor_signal(watch.first, id, signal_kind::demonitor));
            links_.clear();
            out_monitors_.clear();
            in_monitors_.clear();
            if (sock_) sock_.close();
        } catch (...) {
            // Out of memory while tearing down: the rest of the runtime goes on.
        }
    }

    node_service& svc_;
    runtime_impl& rt_;
    atom peer_;
    tcp::socket sock_;
    pid self_;
    packet_reader reader_;
    connection_nodes nodes_;
    std::uint64_t flags_ = 0;
    bool up_ = false;
    std::string reason_;
    byte_buffer out_;
    clock::time_point last_in_, last_out_;
    std::vector<dist_out> held_;                             // routed before we connected
    std::set<std::pair<pid, pid>> links_;                    // (local, remote)
    std::map<ref, std::pair<pid, process_id>> out_monitors_; // local watcher, remote target
    std::map<ref, std::pair<pid, pid>> in_monitors_;         // remote watcher, local target
};

} // namespace

void connection_main(node_service* svc, atom peer, tcp::socket accepted) {
    connection c(*svc, peer, accepted);
    // A failed connection is reported and ends here: never a crash of the node.
    try {
        c.run();
    } catch (const connection_lost& e) {
        dist_log(log_level::warning, e.what());
    } catch (const protocol_error& e) {
        // Malformed bytes from the peer close this connection, nothing else.
        dist_log(log_level::error,
                 fmt::format("connection to {}: protocol error: {}", peer, e.what()));
    } catch (const io_error& e) {
        dist_log(log_level::warning, fmt::format("connection to {}: {}", peer, e.what()));
    }
}

} // namespace erl::detail::dist
