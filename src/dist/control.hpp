// Control messages of the connected phase: a typed representation, their strict parse from
// decoded terms, and the choice of wire form by the negotiated flags.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>

#include <erl/atom.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>
#include <erl/term.hpp>

#include "dist/wire.hpp"

namespace erl::detail::dist {

// The operation numbers (the first element of the control tuple).
enum class dop : std::uint8_t {
    link = 1,
    send = 2,
    exit = 3,
    unlink = 4,
    node_link = 5,
    reg_send = 6,
    group_leader = 7,
    exit2 = 8,
    send_tt = 12,
    exit_tt = 13,
    reg_send_tt = 16,
    exit2_tt = 18,
    monitor_p = 19,
    demonitor_p = 20,
    monitor_p_exit = 21,
    send_sender = 22,
    send_sender_tt = 23,
    payload_exit = 24,
    payload_exit_tt = 25,
    payload_exit2 = 26,
    payload_exit2_tt = 27,
    payload_monitor_p_exit = 28,
    spawn_request = 29,
    spawn_request_tt = 30,
    spawn_reply = 31,
    spawn_reply_tt = 32,
    alias_send = 33,
    alias_send_tt = 34,
    unlink_id = 35,
    unlink_id_ack = 36,
};
std::string_view to_string(dop op) noexcept;

// A process addressed by pid or by registered name. Names stay terms (atoms): a name from the
// network need not be interned to be answered (a MONITOR_P of an unknown name is answered
// with noproc and that very name); atom::existing() finds a registered one.
using process_id = std::variant<pid, term>;

// One struct per signal; TT (seq_trace) variants parse into the same struct, and the
// PAYLOAD_ forms of exits carry their reason in `reason` like the old forms.
namespace ctl {
struct link { // 1
    pid from, to;
};
struct send { // SEND 2 (from is null), SEND_SENDER 22; payload: the message
    pid from, to;
};
struct reg_send { // 6; payload: the message
    pid from;
    term to_name;
};
struct alias_send { // 33; payload: the message
    pid from;
    ref alias;
};
struct exit { // link broken by an exit: EXIT 3 / PAYLOAD_EXIT 24
    pid from, to;
    term reason;
};
struct exit2 { // exit/2: EXIT2 8 / PAYLOAD_EXIT2 26
    pid from, to;
    term reason;
};
struct unlink { // 4: the old unlink, before UNLINK_ID (OTP 26+ no longer send it)
    pid from, to;
};
struct unlink_id { // 35
    std::uint64_t id = 0;
    pid from, to;
};
struct unlink_id_ack { // 36: from is the process that was unlinked, to the one that unlinked
    std::uint64_t id = 0;
    pid from, to;
};
struct group_leader { // 7: `from` becomes `to`'s group leader (it may be on any node)
    term from;
    pid to;
};
struct monitor_p { // 19: `from` monitors `to` (pid or name on the receiving node)
    pid from;
    process_id to;
    ref id;
};
struct demonitor_p { // 20
    pid from;
    process_id to;
    ref id;
};
struct monitor_p_exit { // MONITOR_P_EXIT 21 / PAYLOAD_MONITOR_P_EXIT 28: the DOWN
    process_id from;    // what was monitored: pid, or the name it was monitored by
    pid to;
    ref id;
    term reason;
};
struct spawn_request { // 29; payload: the argument list
    ref id;
    pid from;
    term group_leader; // a pid, possibly of a third node
    term module, function;
    std::uint32_t arity = 0;
    term options; // a proper list
};
struct spawn_reply { // 31
    ref id;
    pid to;
    std::uint32_t flags = 0; // bit 0: link set up, bit 1: monitor set up
    term result;             // the new pid, or an error atom
};
} // namespace ctl

using control_message =
    std::variant<ctl::link, ctl::send, ctl::reg_send, ctl::alias_send, ctl::exit, ctl::exit2,
                 ctl::unlink, ctl::unlink_id, ctl::unlink_id_ack, ctl::group_leader, ctl::monitor_p,
                 ctl::demonitor_p, ctl::monitor_p_exit, ctl::spawn_request, ctl::spawn_reply>;

// The two nodes of a connection. Parsing requires senders (`from` fields) to be on the peer,
// addressees (`to` pids) on this node, references on one of the two: anything else is not a
// signal this connection can carry. Pids are built with these atoms, so decoding them interns
// no atom.
struct connection_nodes {
    atom local;
    atom peer;
};

// A decoded packet.
struct incoming {
    dop op{};
    control_message control;
    std::optional<term> payload;     // the message of sends and the arguments of spawn_request
    std::optional<term> trace_token; // *_TT variants (seq_trace), otherwise empty
};

// Checks a control tuple and its payload (present exactly when the operation has one) and
// builds the typed message; throws protocol_error naming the operation and the field.
incoming parse_control(const term& control, std::optional<term> payload,
                       const connection_nodes& nodes);

// The control tuple (and payload) for a message, in the wire form the negotiated flags call
// for: SEND_SENDER rather than SEND when negotiated (and the sender known), the PAYLOAD_ forms
// of exits and DOWNs with EXIT_PAYLOAD. The operation is returned too.
struct outgoing {
    dop op{};
    term control;
    std::optional<term> payload;
};
// `message` is the payload of sends (required for send, reg_send, alias_send) and the argument
// list of spawn_request; std::invalid_argument if it is missing or given where none belongs.
outgoing make_control(const control_message& m, std::uint64_t negotiated_flags,
                      std::optional<term> message = std::nullopt);

// A registered name from the network as an atom, if such an atom exists at all (no interning).
std::optional<atom> existing_atom(const term& name);

} // namespace erl::detail::dist
