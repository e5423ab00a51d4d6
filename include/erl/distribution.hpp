// erl::distribution_options — what makes a runtime a node of an Erlang cluster: give them in
// runtime_options::distribution. The calls for a distributed node are in <erl/node.hpp>.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace erl {

struct distribution_options {
    // "cpp@127.0.0.1" (long names, like erl -name) or "cpp@myhost" (short names, erl -sname).
    // A name without '@' gets this host's name: its full name with long_names, else the part
    // before the first dot.
    std::string name;
    bool long_names = true;
    // The cookie; unset: read ~/.erlang.cookie as erl does (an error if there is none).
    std::optional<std::string> cookie;
    // Hidden nodes (the default) do not join the other nodes' `nodes()` lists and are not
    // fully meshed by global; visible ones are, like a plain erl node.
    bool hidden = true;
    // TCP port for incoming connections (0: any free port; EPMD tells the others which).
    std::uint16_t port = 0;
    // EPMD's port: 0 takes $ERL_EPMD_PORT, else 4369. When no EPMD answers, start one with
    // `epmd -daemon` as erl does (needs Debian's erlang-base), unless start_epmd is false.
    std::uint16_t epmd_port = 0;
    bool start_epmd = true;
    // Erlang's net_ticktime: a connection silent for this long is down (noconnection); a tick
    // is sent after a quarter of it without traffic.
    std::chrono::seconds net_ticktime{60};
    // Erlang's net_setuptime: how long a connection may take to set up (both directions).
    std::chrono::milliseconds setup_time{7000};
    // The largest packet accepted from a peer; a larger one closes that connection.
    std::size_t max_packet = std::size_t(64) << 20;
};

} // namespace erl
