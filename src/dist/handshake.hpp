// The distribution handshake (protocol version 6), both roles, as a state machine without I/O:
// feed it what the socket received, send what take_output() returns, and watch state().
//
//   initiator (A)                                acceptor (B)
//   send_name 'N' flags creation name  ───────►  checks the name and the mandatory flags
//                                      ◄───────  status: ok, ok_simultaneous, nok, alive,
//                                                not_allowed (B's runtime decides: answer())
//   (after alive: "true" / "false")    ───────►
//                                      ◄───────  challenge 'N' flags ChB creation name
//   A checks B's name is the one it dialled
//   challenge_reply 'r' ChA md5(cookie,ChB) ──►  checks the digest
//                                      ◄───────  challenge_ack 'a' md5(cookie,ChA)
//   A checks the digest: connected                connected
//
// Every handshake message carries a u16 length; once connected, packets carry a u32 length (see
// framing.hpp), and bytes that arrived behind the last handshake message are kept for that
// phase (take_leftover()). Timeouts are the caller's (OTP gives up after net_setuptime, 7 s).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "dist/flags.hpp"
#include "dist/wire.hpp"

namespace erl::detail::dist {

// What an acceptor answers a send_name with (the 's' status message).
enum class handshake_status : std::uint8_t {
    ok,
    // B also has an attempt of its own to A going, and drops it (A's name is the greater).
    ok_simultaneous,
    // B also has an attempt of its own to A going, and keeps it (B's name is the greater): A
    // gives up this one.
    nok,
    // B refuses A (policy, or A lacks mandatory flags; the machine answers this by itself then).
    not_allowed,
    // B believes it is already connected to A: A answers whether to replace that connection.
    alive,
};
std::string_view to_string(handshake_status s) noexcept;

// The simultaneous-connect rule for an acceptor that already dials the peer: the node with the
// greater name (bytewise) keeps its own attempt. Returns nok (ours wins) or ok_simultaneous.
handshake_status simultaneous_answer(std::string_view this_node, std::string_view peer_node);

enum class handshake_failure : std::uint8_t {
    none,
    malformed,     // a message broke the protocol (bad tag, bad length, bad name...)
    version,       // the peer speaks an older protocol than version 6 with HANDSHAKE_23
    bad_cookie,    // a digest did not match: the cookies differ
    not_allowed,   // refused: missing mandatory flags (either side), or the peer's policy
    name_mismatch, // the node that answered is not the node we dialled
    nok,           // simultaneous connect: the peer keeps its own attempt
    alive,         // the peer is already connected to us and we (or it) declined to replace it
    unsupported,   // something we do not do (dynamic node names)
};
std::string_view to_string(handshake_failure f) noexcept;

struct handshake_config {
    std::string node;           // this node's full name, alive@host
    std::uint32_t creation = 0; // from EPMD's ALIVE2 reply
    std::string cookie;
    // What we offer (dflag::erlcpp_default, | dflag::published for a visible node).
    std::uint64_t flags = dflag::erlcpp_default;
    // What the peer must offer (after MANDATORY_25_DIGEST expansion): the OTP 26 mandatory set.
    std::uint64_t required = dflag::mandatory_26;
    // The initiator's answer when the acceptor says `alive` (OTP answers true while this is
    // still the pending attempt, which it is for a caller that just dialled).
    bool replace_alive = true;
    // Challenges; default: getrandom(2). Tests inject fixed values.
    std::function<std::uint32_t()> challenge_source;
};

struct peer_info {
    std::string node;
    std::uint64_t flags = 0; // as the peer sent them (before expansion)
    std::uint32_t creation = 0;
};

class handshake {
  public:
    enum class state : std::uint8_t {
        in_progress,
        awaiting_status, // acceptor: peer() is known; call answer()
        done,
        failed,
    };
    enum class role : std::uint8_t { initiator, acceptor };

    // A dials `peer_node`; take_output() holds the send_name at once.
    static handshake initiate(handshake_config cfg, std::string peer_node);
    static handshake accept(handshake_config cfg);

    // Consumes received bytes and advances; output and the new state are then available.
    state feed(bytes_view bytes);
    // Acceptor in awaiting_status: sends the status and goes on (ok, ok_simultaneous, alive)
    // or ends (nok, not_allowed: state failed with that reason).
    state answer(handshake_status s);

    state current() const noexcept { return state_; }
    role which() const noexcept { return role_; }
    // Bytes to write to the socket now (the buffer is handed over and emptied).
    byte_buffer take_output() { return std::exchange(out_, {}); }
    // The peer's name, flags and creation: known in awaiting_status (acceptor) or done.
    const peer_info& peer() const noexcept { return peer_; }
    // ours AND the peer's (expanded): what the connection may use. Valid once done.
    std::uint64_t negotiated_flags() const noexcept { return negotiated_; }
    // Initiator: the status the acceptor sent (ok or ok_simultaneous once past it).
    handshake_status status_received() const noexcept { return status_; }
    handshake_failure failure() const noexcept { return failure_; }
    const std::string& failure_reason() const noexcept { return reason_; }
    // Connected-phase bytes that came behind the final handshake message.
    byte_buffer take_leftover();

  private:
    enum class step : std::uint8_t {
        a_status,
        a_challenge,
        a_ack,
        b_name,
        b_status, // waiting for answer()
        b_alive_reply,
        b_complement,
        b_reply,
        finished,
    };
    handshake(handshake_config cfg, role r);

    bool message(bytes_view m); // one length-delimited message; false to stop
    bool on_status(bytes_view m);
    bool on_challenge(bytes_view m);
    bool on_ack(bytes_view m);
    bool on_name(bytes_view m);
    bool on_alive_reply(bytes_view m);
    bool on_complement(bytes_view m);
    bool on_reply(bytes_view m);
    void send_challenge();
    bool check_flags(bool send_not_allowed);
    bool fail(handshake_failure f, std::string reason);
    void emit(const byte_buffer& body);
    std::uint32_t new_challenge();

    handshake_config cfg_;
    role role_;
    state state_ = state::in_progress;
    step step_;
    std::string dialled_;
    peer_info peer_;
    std::uint64_t negotiated_ = 0;
    std::uint32_t my_challenge_ = 0;
    bool old_name_ = false; // the peer sent a version 5 'n': its 'c' comes before its 'r'
    handshake_status status_ = handshake_status::ok;
    handshake_failure failure_ = handshake_failure::none;
    std::string reason_;
    byte_buffer in_, out_;
};

} // namespace erl::detail::dist
