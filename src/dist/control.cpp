#include "dist/control.hpp"

#include <array>
#include <stdexcept>

#include <fmt/format.h>

#include "dist/flags.hpp"

namespace erl::detail::dist {
namespace {

// Reads the elements of one control tuple; every failure names the operation and the field.
class fields {
  public:
    fields(const term& t, dop op, const connection_nodes& nodes) : t_(t), op_(op), n_(nodes) {}

    [[noreturn]] void bad(std::size_t i, std::string_view why) const {
        throw protocol_error(fmt::format("control message {} {}: element {} {}", to_string(op_),
                                         t_.to_string().substr(0, 200), i + 1, why));
    }

    const term& at(std::size_t i) const { return t_[i]; }

    term atom_at(std::size_t i) const {
        if (!at(i).is_atom()) bad(i, "is not an atom");
        return at(i);
    }
    std::uint64_t uint_at(std::size_t i, std::uint64_t max) const {
        const term& v = at(i);
        std::uint64_t x = 0;
        if (v.is_small_int()) {
            if (v.as_int64() < 0) bad(i, "is negative");
            x = std::uint64_t(v.as_int64());
        } else if (v.is_integer()) {
            bigint b = v.as_bigint();
            auto le = b.to_le_bytes();
            if (b.negative() || le.size() > 8) bad(i, "is out of range");
            for (std::size_t k = le.size(); k-- > 0;)
                x = x << 8 | le[k];
        } else {
            bad(i, "is not an integer");
        }
        if (x > max) bad(i, "is out of range");
        return x;
    }
    // A pid of `node` (the peer for senders, this node for addressees).
    pid pid_on(std::size_t i, atom node) const {
        const term& v = at(i);
        if (!v.is_pid()) bad(i, "is not a pid");
        if (v.node_name() != node.name())
            bad(i, fmt::format("is not a pid of {}", node.name().substr(0, 255)));
        return pid(node, std::uint32_t(v.id()), v.serial(), v.creation());
    }
    pid from_pid(std::size_t i) const { return pid_on(i, n_.peer); }
    pid to_pid(std::size_t i) const { return pid_on(i, n_.local); }
    term any_pid(std::size_t i) const {
        if (!at(i).is_pid()) bad(i, "is not a pid");
        return at(i);
    }
    process_id proc_on(std::size_t i, atom node) const {
        if (at(i).is_atom()) return at(i);
        return pid_on(i, node);
    }
    ref ref_at(std::size_t i) const {
        const term& v = at(i);
        if (!v.is_ref()) bad(i, "is not a reference");
        std::string_view node = v.node_name();
        atom a = node == n_.local.name()  ? n_.local
                 : node == n_.peer.name() ? n_.peer
                                          : (bad(i, "is a reference of a third node"), atom());
        return ref(a, v.creation(), v.ref_words());
    }

  private:
    const term& t_;
    dop op_;
    const connection_nodes& n_;
};

// What each operation looks like on the wire: its name, tuple arity (with the trace token of
// the TT forms), whether a payload follows, and for TT forms the plain operation and where the
// token sits. Operations with no name are unknown (NODE_LINK 5 is obsolete and refused too).
struct op_info {
    const char* name = nullptr;
    std::uint8_t arity = 0;
    bool payload = false;
    dop plain{};               // the operation without trace token
    std::uint8_t token_at = 0; // TT forms: the token's element index (0: not a TT form)
};

constexpr std::array<op_info, 37> make_ops() {
    std::array<op_info, 37> t{};
    auto op = [&](dop o, const char* name, std::uint8_t arity, bool payload, dop plain,
                  std::uint8_t token_at) {
        t[std::size_t(o)] = op_info{name, arity, payload, plain, token_at};
    };
    op(dop::link, "LINK", 3, false, dop::link, 0);
    op(dop::send, "SEND", 3, true, dop::send, 0);
    op(dop::exit, "EXIT", 4, false, dop::exit, 0);
    op(dop::unlink, "UNLINK", 3, false, dop::unlink, 0);
    op(dop::reg_send, "REG_SEND", 4, true, dop::reg_send, 0);
    op(dop::group_leader, "GROUP_LEADER", 3, false, dop::group_leader, 0);
    op(dop::exit2, "EXIT2", 4, false, dop::exit2, 0);
    op(dop::send_tt, "SEND_TT", 4, true, dop::send, 3);
    op(dop::exit_tt, "EXIT_TT", 5, false, dop::exit, 3);
    op(dop::reg_send_tt, "REG_SEND_TT", 5, true, dop::reg_send, 4);
    op(dop::exit2_tt, "EXIT2_TT", 5, false, dop::exit2, 3);
    op(dop::monitor_p, "MONITOR_P", 4, false, dop::monitor_p, 0);
    op(dop::demonitor_p, "DEMONITOR_P", 4, false, dop::demonitor_p, 0);
    op(dop::monitor_p_exit, "MONITOR_P_EXIT", 5, false, dop::monitor_p_exit, 0);
    op(dop::send_sender, "SEND_SENDER", 3, true, dop::send_sender, 0);
    op(dop::send_sender_tt, "SEND_SENDER_TT", 4, true, dop::send_sender, 3);
    op(dop::payload_exit, "PAYLOAD_EXIT", 3, true, dop::payload_exit, 0);
    op(dop::payload_exit_tt, "PAYLOAD_EXIT_TT", 4, true, dop::payload_exit, 3);
    op(dop::payload_exit2, "PAYLOAD_EXIT2", 3, true, dop::payload_exit2, 0);
    op(dop::payload_exit2_tt, "PAYLOAD_EXIT2_TT", 4, true, dop::payload_exit2, 3);
    op(dop::payload_monitor_p_exit, "PAYLOAD_MONITOR_P_EXIT", 4, true, dop::payload_monitor_p_exit,
       0);
    op(dop::spawn_request, "SPAWN_REQUEST", 6, true, dop::spawn_request, 0);
    op(dop::spawn_request_tt, "SPAWN_REQUEST_TT", 7, true, dop::spawn_request, 6);
    op(dop::spawn_reply, "SPAWN_REPLY", 5, false, dop::spawn_reply, 0);
    op(dop::spawn_reply_tt, "SPAWN_REPLY_TT", 6, false, dop::spawn_reply, 5);
    op(dop::alias_send, "ALIAS_SEND", 3, true, dop::alias_send, 0);
    op(dop::alias_send_tt, "ALIAS_SEND_TT", 4, true, dop::alias_send, 3);
    op(dop::unlink_id, "UNLINK_ID", 4, false, dop::unlink_id, 0);
    op(dop::unlink_id_ack, "UNLINK_ID_ACK", 4, false, dop::unlink_id_ack, 0);
    return t;
}
constexpr auto ops = make_ops();

} // namespace

std::string_view to_string(dop op) noexcept {
    if (std::size_t(op) == std::size_t(dop::node_link)) return "NODE_LINK";
    const char* n = std::size_t(op) < ops.size() ? ops[std::size_t(op)].name : nullptr;
    return n ? n : "?";
}

incoming parse_control(const term& control, std::optional<term> payload,
                       const connection_nodes& nodes) {
    if (!control.is_tuple() || control.size() == 0 || !control[0].is_small_int())
        throw protocol_error(fmt::format("control message is not a tuple {{Op, ...}}: {}",
                                         control.to_string().substr(0, 200)));
    std::int64_t raw = control[0].as_int64();
    if (raw < 0 || raw >= std::int64_t(ops.size()) || !ops[std::size_t(raw)].name)
        throw protocol_error(fmt::format("unknown or unsupported control operation {}", raw));
    const op_info& info = ops[std::size_t(raw)];
    incoming in;
    in.op = dop(raw);
    fields f(control, in.op, nodes);
    if (control.size() != info.arity)
        throw protocol_error(fmt::format("control message {} of arity {} (want {})", info.name,
                                         control.size(), info.arity));
    if (info.payload != payload.has_value())
        throw protocol_error(fmt::format("control message {} {} a payload", info.name,
                                         payload ? "with" : "without"));
    if (info.token_at) in.trace_token = control[info.token_at];
    // The exit reason: the payload of the PAYLOAD_ forms, else the element after the others
    // (after the token in EXIT_TT and EXIT2_TT).
    auto reason = [&](std::size_t at) {
        if (payload) return std::exchange(payload, std::nullopt).value();
        return control[info.token_at ? at + 1 : at];
    };

    switch (info.plain) {
    case dop::link:
        in.control = ctl::link{f.from_pid(1), f.to_pid(2)};
        break;
    case dop::send:
        f.atom_at(1); // unused ('' from OTP 25)
        in.control = ctl::send{pid(), f.to_pid(2)};
        break;
    case dop::send_sender:
        in.control = ctl::send{f.from_pid(1), f.to_pid(2)};
        break;
    case dop::reg_send:
        f.atom_at(2);
        in.control = ctl::reg_send{f.from_pid(1), f.atom_at(3)};
        break;
    case dop::alias_send:
        in.control = ctl::alias_send{f.from_pid(1), f.ref_at(2)};
        break;
    case dop::exit:
    case dop::payload_exit:
        in.control = ctl::exit{f.from_pid(1), f.to_pid(2), reason(3)};
        break;
    case dop::exit2:
    case dop::payload_exit2:
        in.control = ctl::exit2{f.from_pid(1), f.to_pid(2), reason(3)};
        break;
    case dop::unlink:
        in.control = ctl::unlink{f.from_pid(1), f.to_pid(2)};
        break;
    case dop::unlink_id:
        in.control = ctl::unlink_id{f.uint_at(1, UINT64_MAX), f.from_pid(2), f.to_pid(3)};
        if (std::get<ctl::unlink_id>(in.control).id == 0) f.bad(1, "is 0 (ids start at 1)");
        break;
    case dop::unlink_id_ack:
        in.control = ctl::unlink_id_ack{f.uint_at(1, UINT64_MAX), f.from_pid(2), f.to_pid(3)};
        break;
    case dop::group_leader:
        in.control = ctl::group_leader{f.any_pid(1), f.to_pid(2)};
        break;
    case dop::monitor_p:
        in.control = ctl::monitor_p{f.from_pid(1), f.proc_on(2, nodes.local), f.ref_at(3)};
        break;
    case dop::demonitor_p:
        in.control = ctl::demonitor_p{f.from_pid(1), f.proc_on(2, nodes.local), f.ref_at(3)};
        break;
    case dop::monitor_p_exit:
    case dop::payload_monitor_p_exit:
        in.control =
            ctl::monitor_p_exit{f.proc_on(1, nodes.peer), f.to_pid(2), f.ref_at(3), reason(4)};
        break;
    case dop::spawn_request: {
        const term& mfa = control[4];
        if (!mfa.is_tuple(3) || !mfa[0].is_atom() || !mfa[1].is_atom() || !mfa[2].is_small_int() ||
            mfa[2].as_int64() < 0 || mfa[2].as_int64() > 255)
            f.bad(4, "is not {Module, Function, Arity}");
        if (!control[5].is_proper_list()) f.bad(5, "is not a proper list of options");
        if (!payload->is_proper_list())
            throw protocol_error("control message SPAWN_REQUEST: the arguments are not a list");
        if (payload->size() != std::size_t(mfa[2].as_int64()))
            throw protocol_error("control message SPAWN_REQUEST: arity and arguments differ");
        in.control =
            ctl::spawn_request{f.ref_at(1), f.from_pid(2), f.any_pid(3),
                               mfa[0],      mfa[1],        std::uint32_t(mfa[2].as_int64()),
                               control[5]};
        break;
    }
    case dop::spawn_reply: {
        const term& result = control[4];
        if (!result.is_atom()) f.from_pid(4); // else an error atom
        in.control =
            ctl::spawn_reply{f.ref_at(1), f.to_pid(2), std::uint32_t(f.uint_at(3, 3)), result};
        break;
    }
    default: // TT forms never appear as `plain`; NODE_LINK has no table entry
        throw protocol_error(fmt::format("control operation {} not handled", raw));
    }
    in.payload = std::move(payload);
    return in;
}

namespace {

term proc_term(const process_id& p) {
    return std::visit([](const auto& v) { return term(v); }, p);
}
term op_term(dop op) {
    return term(int(op));
}

} // namespace

outgoing make_control(const control_message& m, std::uint64_t flags, std::optional<term> message) {
    const bool payload_exits = flags & dflag::exit_payload;
    outgoing o;
    auto set = [&](dop op, term control) {
        o.op = op;
        o.control = std::move(control);
    };
    // Exits and DOWNs: the reason as payload (the PAYLOAD_ forms) or as the tuple's last element.
    auto with_reason = [&](dop payload_op, dop plain_op, std::vector<term> elements,
                           const term& reason) {
        dop op = payload_exits ? payload_op : plain_op;
        elements.insert(elements.begin(), op_term(op));
        if (payload_exits)
            o.payload = reason;
        else
            elements.push_back(reason);
        set(op, term::tuple_from(std::move(elements)));
    };
    bool wants_message = false;
    std::visit(
        [&](const auto& c) {
            using T = std::decay_t<decltype(c)>;
            if constexpr (std::is_same_v<T, ctl::link>) {
                set(dop::link, tuple(op_term(dop::link), c.from, c.to));
            } else if constexpr (std::is_same_v<T, ctl::send>) {
                wants_message = true;
                if (c.from && (flags & dflag::send_sender))
                    set(dop::send_sender, tuple(op_term(dop::send_sender), c.from, c.to));
                else
                    set(dop::send, tuple(op_term(dop::send), atom(), c.to));
            } else if constexpr (std::is_same_v<T, ctl::reg_send>) {
                wants_message = true;
                if (!c.to_name.is_atom()) throw std::invalid_argument("reg_send: name not an atom");
                set(dop::reg_send, tuple(op_term(dop::reg_send), c.from, atom(), c.to_name));
            } else if constexpr (std::is_same_v<T, ctl::alias_send>) {
                wants_message = true;
                set(dop::alias_send, tuple(op_term(dop::alias_send), c.from, c.alias));
            } else if constexpr (std::is_same_v<T, ctl::exit>) {
                with_reason(dop::payload_exit, dop::exit, {c.from, c.to}, c.reason);
            } else if constexpr (std::is_same_v<T, ctl::exit2>) {
                with_reason(dop::payload_exit2, dop::exit2, {c.from, c.to}, c.reason);
            } else if constexpr (std::is_same_v<T, ctl::unlink>) {
                set(dop::unlink, tuple(op_term(dop::unlink), c.from, c.to));
            } else if constexpr (std::is_same_v<T, ctl::unlink_id>) {
                set(dop::unlink_id, tuple(op_term(dop::unlink_id), c.id, c.from, c.to));
            } else if constexpr (std::is_same_v<T, ctl::unlink_id_ack>) {
                set(dop::unlink_id_ack, tuple(op_term(dop::unlink_id_ack), c.id, c.from, c.to));
            } else if constexpr (std::is_same_v<T, ctl::group_leader>) {
                set(dop::group_leader, tuple(op_term(dop::group_leader), c.from, c.to));
            } else if constexpr (std::is_same_v<T, ctl::monitor_p>) {
                set(dop::monitor_p, tuple(op_term(dop::monitor_p), c.from, proc_term(c.to), c.id));
            } else if constexpr (std::is_same_v<T, ctl::demonitor_p>) {
                set(dop::demonitor_p,
                    tuple(op_term(dop::demonitor_p), c.from, proc_term(c.to), c.id));
            } else if constexpr (std::is_same_v<T, ctl::monitor_p_exit>) {
                with_reason(dop::payload_monitor_p_exit, dop::monitor_p_exit,
                            {proc_term(c.from), c.to, c.id}, c.reason);
            } else if constexpr (std::is_same_v<T, ctl::spawn_request>) {
                wants_message = true;
                set(dop::spawn_request,
                    tuple(op_term(dop::spawn_request), c.id, c.from, c.group_leader,
                          tuple(c.module, c.function, c.arity), c.options));
            } else if constexpr (std::is_same_v<T, ctl::spawn_reply>) {
                set(dop::spawn_reply,
                    tuple(op_term(dop::spawn_reply), c.id, c.to, c.flags, c.result));
            }
        },
        m);
    if (wants_message != message.has_value())
        throw std::invalid_argument(
            fmt::format("{}: {}", to_string(o.op),
                        wants_message ? "needs a message payload" : "takes no message payload"));
    if (message) o.payload = std::move(message);
    return o;
}

std::optional<atom> existing_atom(const term& name) {
    if (!name.is_atom() || name.atom_name().size() > atom::max_length) return std::nullopt;
    return atom::existing(name.atom_name());
}

} // namespace erl::detail::dist
