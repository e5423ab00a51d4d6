// A runtime as a node of an Erlang cluster: the EPMD registration, the table of connections to
// other nodes, and the router that turns signals to remote pids into control messages for the
// connection processes (connection.cpp) that own the sockets. Internal.
//
//   net_kernel (registered)   answers is_auth (net_adm:ping), links to every connection
//   dist_acceptor             accepts connections, one connection process each
//   connection processes      one per connected node: handshake, then packets both ways
//
// All three are system processes (spawn_options::system) of the runtime.
#pragma once

#include <erl/distribution.hpp>
#include <erl/etf.hpp>
#include <erl/node.hpp>
#include <erl/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "dist/control.hpp"
#include "dist/handshake.hpp"
#include "dist/node_name.hpp"
#include "runtime/remote.hpp"

namespace erl::detail {
struct runtime_impl;
}

namespace erl::detail::dist {

// A control message for a connection process to write (sent to it as a message).
struct dist_out {
    control_message control;
    std::optional<term> payload;
};
// Asks a connection process to close (disconnect_node).
struct dist_close {};
// Tells a connection process made for an accepted socket that it owns the socket now.
struct dist_go {};

// The placeholder pid that stands for a process monitored by name on `node` (number 0, serial
// 0, creation 0): the connection knows the name by the monitor's ref.
inline pid name_placeholder(atom node) {
    return pid(node, 0, 0, 0);
}
inline bool is_name_placeholder(const pid& p) {
    return p.number() == 0 && p.serial() == 0 && p.creation() == 0;
}

class node_service final : public remote_router {
  public:
    // Listens and registers with EPMD (starting it if needed); sets rt.node and rt.creation.
    // Runs in the runtime's constructor, before any process. Throws std::runtime_error.
    node_service(runtime_impl& rt, const distribution_options& options);
    ~node_service() override;

    // Spawns net_kernel and the acceptor (after the schedulers started).
    void start();

    void route(const pid& sender, const pid& to, envelope_ptr e, message_to_term convert) override;
    // Sends a control message towards `node`, connecting first if needed.
    void route_control(atom node, control_message m, std::optional<term> payload = {});

    // --- for connection processes ---
    handshake_config handshake_settings() const;
    // The acceptor's status decision for a connection from `peer` handled by `me`.
    handshake_status claim_incoming(atom peer, const pid& me);
    // An initiating connection process `me` starts: it takes the signals queued for `peer`
    // (none when another process already handles that node: then `me` must end).
    std::vector<dist_out> take_pending(atom peer, const pid& me);
    // The connection `me` to `peer` is up: returns the signals queued meanwhile, or sets
    // `superseded` when another process took the node over (simultaneous connect).
    std::vector<dist_out> connection_up(atom peer, const pid& me, std::uint64_t flags,
                                        bool& superseded);
    // The connection process `me` ends: forgets it and tells node watchers (nodedown). Returns
    // the signals still queued for the node, and the process that handles the node now if it
    // is another one (then the signals go to it rather than being answered noconnection).
    std::pair<std::vector<dist_out>, pid> connection_down(atom peer, const pid& me);
    // The connection process for `node` if one runs; otherwise asks net_kernel for one and
    // returns the null pid.
    pid connection_for(atom node);
    std::optional<pid> existing_connection(atom node);
    bool is_up(atom node);
    std::vector<atom> connected();

    void add_node_watcher(atom node, const pid& watcher, bool on);
    // net_kernel:monitor_nodes: nodeup and nodedown of every node to `watcher`.
    void watch_all_nodes(const pid& watcher, bool on);
    pid net_kernel() const noexcept { return net_kernel_; }

    // Process aliases (EEP 53) for this node's remote calls: a reply sent to the alias reaches
    // the process while the alias is active, and is dropped after.
    void activate_alias(const ref& alias, const pid& owner);
    void deactivate_alias(const ref& alias);
    std::optional<pid> alias_owner(const ref& alias);

    runtime_impl& rt;
    distribution_options options;
    node_name name;
    atom node;
    std::string cookie;
    std::uint64_t flags = 0;
    std::uint32_t creation = 0;
    std::uint16_t listen_port = 0;
    std::uint16_t epmd_port = 0;
    etf::decode_options decode_limits;

  private:
    template <typename Event>
    void notify_watchers(const std::vector<pid>& watchers, const Event& event);

    struct entry {
        pid process;
        bool up = false;
        bool initiated = false; // we dialled (the simultaneous-connect rule needs it)
        bool requested = false; // net_kernel was asked to start a connection process
        std::uint64_t flags = 0;
        std::vector<dist_out> pending; // signals routed before a connection process took over
    };
    int listen_fd_ = -1; // handed to the acceptor process at start()
    int epmd_fd_ = -1;   // kept open: closing it unregisters the node
    std::mutex mutex_;
    std::unordered_map<atom, entry> table_;
    std::unordered_map<atom, std::vector<pid>> watchers_;
    std::vector<pid> all_watchers_; // monitor_nodes(true)
    pid net_kernel_;
    std::mutex alias_mutex_;
    std::unordered_map<ref, pid> aliases_;
};

node_service* service_of(runtime_impl& rt) noexcept;
std::unique_ptr<remote_router> make_node_service(runtime_impl& rt, const distribution_options& o);
void start_node_service(runtime_impl& rt);
node_service& require_service(const char* operation);

// The connection process (connection.cpp). `accepted`: a socket from the acceptor (then the
// peer is learnt in the handshake); otherwise it dials `peer`.
void connection_main(node_service* svc, atom peer, tcp::socket accepted);

// The global table of C++ functions Erlang may call (erpc/rpc).
std::optional<rpc_function> find_rpc(std::string_view module, std::string_view function);

} // namespace erl::detail::dist
