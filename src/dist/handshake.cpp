#include "dist/handshake.hpp"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <random>

#include <sys/random.h>

#include <fmt/format.h>

#include "dist/md5.hpp"
#include "dist/node_name.hpp"

namespace erl::detail::dist {
namespace {

constexpr std::uint8_t tag_new_name = 'N';   // send_name and challenge, version 6
constexpr std::uint8_t tag_old_name = 'n';   // send_name, version 5 (OTP 23/24 without EPMD)
constexpr std::uint8_t tag_complement = 'c'; // the rest of an 'n' sender's flags, and creation
constexpr std::uint8_t tag_status = 's';
constexpr std::uint8_t tag_reply = 'r';
constexpr std::uint8_t tag_ack = 'a';
constexpr std::size_t max_pending = 2 * (2 + 0xFFFF);

// A status message ('s' and the text). Built by reserve and append: g++ 12's -Warray-bounds
// misreads an append to a vector made from a one-byte initializer list.
byte_buffer status_message(std::string_view text) {
    byte_buffer m;
    m.reserve(1 + text.size());
    m.push_back(tag_status);
    put_text(m, text);
    return m;
}

std::uint32_t random_challenge() {
    std::uint32_t v = 0;
    // The kernel's CSPRNG; std::random_device only if getrandom is unavailable (old kernels).
    if (::getrandom(&v, sizeof v, 0) == ssize_t(sizeof v)) return v;
    std::random_device rd;
    return rd();
}

bool same_digest(bytes_view got, const md5_digest& want) {
    return got.size() == want.size() && std::equal(got.begin(), got.end(), want.begin());
}

} // namespace

std::string_view to_string(handshake_status s) noexcept {
    // The status texts on the wire, in enum order.
    static constexpr std::string_view names[] = {"ok", "ok_simultaneous", "nok", "not_allowed",
                                                 "alive"};
    return std::size_t(s) < std::size(names) ? names[std::size_t(s)] : "?";
}

std::string_view to_string(handshake_failure f) noexcept {
    static constexpr std::string_view names[] = {"none",       "malformed",   "version",
                                                 "bad_cookie", "not_allowed", "name_mismatch",
                                                 "nok",        "alive",       "unsupported"};
    return std::size_t(f) < std::size(names) ? names[std::size_t(f)] : "?";
}

handshake_status simultaneous_answer(std::string_view this_node, std::string_view peer_node) {
    // string_view compares bytewise as unsigned chars (char_traits<char>::compare is memcmp).
    return this_node > peer_node ? handshake_status::nok : handshake_status::ok_simultaneous;
}

handshake::handshake(handshake_config cfg, role r) : cfg_(std::move(cfg)), role_(r) {
    if (!cfg_.challenge_source) cfg_.challenge_source = random_challenge;
    step_ = r == role::initiator ? step::a_status : step::b_name;
}

handshake handshake::initiate(handshake_config cfg, std::string peer_node) {
    handshake h(std::move(cfg), role::initiator);
    h.dialled_ = std::move(peer_node);
    byte_buffer m;
    put8(m, tag_new_name);
    put64(m, h.cfg_.flags);
    put32(m, h.cfg_.creation);
    put16(m, std::uint32_t(h.cfg_.node.size()));
    put_text(m, h.cfg_.node);
    h.emit(m);
    return h;
}

handshake handshake::accept(handshake_config cfg) {
    return handshake(std::move(cfg), role::acceptor);
}

void handshake::emit(const byte_buffer& body) {
    put16(out_, std::uint32_t(body.size()));
    put_bytes(out_, body);
}

std::uint32_t handshake::new_challenge() {
    return cfg_.challenge_source();
}

bool handshake::fail(handshake_failure f, std::string reason) {
    state_ = state::failed;
    failure_ = f;
    reason_ = std::move(reason);
    step_ = step::finished;
    return false;
}

handshake::state handshake::feed(bytes_view bytes) {
    if (state_ == state::failed) return state_;
    in_.insert(in_.end(), bytes.begin(), bytes.end());
    std::size_t pos = 0;
    // Messages are taken one by one until one is incomplete, the machine waits for answer(),
    // or the handshake is over (what follows then is the connected phase's).
    while (state_ == state::in_progress && step_ != step::finished && in_.size() - pos >= 2) {
        std::size_t len = std::size_t(in_[pos]) << 8 | in_[pos + 1];
        if (in_.size() - pos - 2 < len) break;
        bytes_view m(in_.data() + pos + 2, len);
        pos += 2 + len;
        try {
            if (!message(m)) break;
        } catch (const protocol_error& e) {
            fail(handshake_failure::malformed, e.what());
        }
    }
    in_.erase(in_.begin(), in_.begin() + std::ptrdiff_t(pos));
    // Handshake messages are small and the peer waits for our answers between them: a peer
    // that piles up more than two of the largest possible messages is not shaking hands.
    if (state_ != state::done && in_.size() > max_pending)
        fail(handshake_failure::malformed, "too many bytes before the handshake's next step");
    if (state_ == state::failed) in_.clear();
    return state_;
}

byte_buffer handshake::take_leftover() {
    return state_ == state::done ? std::exchange(in_, {}) : byte_buffer{};
}

bool handshake::message(bytes_view m) {
    if (m.empty()) return fail(handshake_failure::malformed, "empty handshake message");
    switch (step_) {
    case step::a_status:
        return on_status(m);
    case step::a_challenge:
        return on_challenge(m);
    case step::a_ack:
        return on_ack(m);
    case step::b_name:
        return on_name(m);
    case step::b_alive_reply:
        return on_alive_reply(m);
    case step::b_complement:
        return on_complement(m);
    case step::b_reply:
        return on_reply(m);
    case step::b_status:
        return fail(handshake_failure::malformed, "message before our status was sent");
    case step::finished:
        break;
    }
    return false;
}

bool handshake::check_flags(bool send_not_allowed) {
    std::uint64_t have = expand_peer_flags(peer_.flags);
    std::uint64_t missing = cfg_.required & ~have;
    if (missing == 0) {
        negotiated_ = cfg_.flags & have;
        return true;
    }
    if (send_not_allowed) {
        emit(status_message("not_allowed"));
    }
    return fail(handshake_failure::not_allowed,
                fmt::format("{} lacks mandatory flags {}", peer_.node, flags_to_string(missing)));
}

// ---- initiator ----

bool handshake::on_status(bytes_view m) {
    reader in(m, "handshake status");
    if (in.u8() != tag_status) in.fail("not a status message");
    std::string_view s = as_text(in.rest());
    if (s == "ok" || s == "ok_simultaneous") {
        status_ = s == "ok" ? handshake_status::ok : handshake_status::ok_simultaneous;
        step_ = step::a_challenge;
        return true;
    }
    if (s == "alive") {
        status_ = handshake_status::alive;
        emit(status_message(cfg_.replace_alive ? "true" : "false"));
        if (!cfg_.replace_alive)
            return fail(handshake_failure::alive, "already connected to the peer (kept)");
        step_ = step::a_challenge;
        return true;
    }
    if (s == "nok")
        return fail(handshake_failure::nok, "simultaneous connect: the peer keeps its attempt");
    if (s == "not_allowed") return fail(handshake_failure::not_allowed, "the peer refused us");
    if (s.starts_with("named:"))
        return fail(handshake_failure::unsupported, "named: status without a NAME_ME request");
    return fail(handshake_failure::malformed,
                fmt::format("unknown handshake status '{}'", s.substr(0, 64)));
}

bool handshake::on_challenge(bytes_view m) {
    reader in(m, "handshake challenge");
    std::uint8_t tag = in.u8();
    if (tag != tag_new_name)
        return fail(handshake_failure::version,
                    fmt::format("challenge tag {} (only version 6 'N' is spoken)", tag));
    peer_.flags = in.u64();
    std::uint32_t challenge = in.u32();
    peer_.creation = in.u32();
    peer_.node = std::string(in.text(in.u16())); // anything after it is ignored, as OTP does
    if (peer_.node != dialled_)
        return fail(handshake_failure::name_mismatch,
                    fmt::format("dialled {} but {} answered", dialled_, peer_.node));
    if (!check_flags(false)) return false;
    my_challenge_ = new_challenge();
    byte_buffer r{tag_reply};
    put32(r, my_challenge_);
    auto d = handshake_digest(cfg_.cookie, challenge);
    put_bytes(r, d);
    emit(r);
    step_ = step::a_ack;
    return true;
}

bool handshake::on_ack(bytes_view m) {
    reader in(m, "handshake challenge_ack");
    if (in.u8() != tag_ack) in.fail("not a challenge_ack");
    if (in.left() != 16) in.fail("digest is not 16 bytes");
    if (!same_digest(in.rest(), handshake_digest(cfg_.cookie, my_challenge_)))
        return fail(handshake_failure::bad_cookie, "challenge_ack digest mismatch (cookie)");
    state_ = state::done;
    step_ = step::finished;
    return false;
}

// ---- acceptor ----

bool handshake::on_name(bytes_view m) {
    reader in(m, "handshake send_name");
    std::uint8_t tag = in.u8();
    bool old = false;
    if (tag == tag_new_name) {
        peer_.flags = in.u64();
        peer_.creation = in.u32();
        peer_.node = std::string(in.text(in.u16()));
    } else if (tag == tag_old_name) {
        // Version 5 framing, sent by OTP 23/24 when they did not ask EPMD. Only with
        // HANDSHAKE_23 can we go on: the 'N' challenge, then their 'c' complement.
        std::uint16_t version = in.u16();
        peer_.flags = in.u32();
        peer_.node = std::string(as_text(in.rest()));
        if (version != 5 || !(peer_.flags & dflag::handshake_23))
            return fail(
                handshake_failure::version,
                fmt::format("{} speaks version {} without HANDSHAKE_23", peer_.node, version));
        old = true;
    } else {
        return fail(handshake_failure::malformed, fmt::format("send_name tag {}", tag));
    }
    if (peer_.flags & dflag::name_me)
        return fail(handshake_failure::unsupported, "dynamic node names (NAME_ME)");
    if (!is_node_name(peer_.node))
        return fail(handshake_failure::malformed,
                    fmt::format("peer name '{}' is not alive@host", peer_.node.substr(0, 300)));
    if (old) {
        // The upper flag bits come with 'c'; check what we can see now.
        std::uint64_t low_required = cfg_.required & 0xFFFF'FFFFull;
        std::uint64_t have = expand_peer_flags(peer_.flags);
        if ((have & low_required) != low_required) return check_flags(true);
        old_name_ = true;
    } else if (!check_flags(true)) {
        return false;
    }
    step_ = step::b_status;
    state_ = state::awaiting_status;
    return false;
}

handshake::state handshake::answer(handshake_status s) {
    if (state_ != state::awaiting_status) return state_;
    state_ = state::in_progress;
    emit(status_message(to_string(s)));
    switch (s) {
    case handshake_status::ok:
    case handshake_status::ok_simultaneous:
        send_challenge();
        step_ = old_name_ ? step::b_complement : step::b_reply;
        break;
    case handshake_status::alive:
        step_ = step::b_alive_reply;
        break;
    case handshake_status::nok:
        fail(handshake_failure::nok, "simultaneous connect: we keep our own attempt");
        break;
    case handshake_status::not_allowed:
        fail(handshake_failure::not_allowed, "refused by this node");
        break;
    }
    feed({}); // messages that came early
    return state_;
}

void handshake::send_challenge() {
    my_challenge_ = new_challenge();
    byte_buffer m{tag_new_name};
    put64(m, cfg_.flags);
    put32(m, my_challenge_);
    put32(m, cfg_.creation);
    put16(m, std::uint32_t(cfg_.node.size()));
    put_text(m, cfg_.node);
    emit(m);
}

bool handshake::on_alive_reply(bytes_view m) {
    reader in(m, "handshake alive reply");
    if (in.u8() != tag_status) in.fail("not a status message");
    std::string_view s = as_text(in.rest());
    if (s == "false") return fail(handshake_failure::alive, "the peer keeps its connection");
    if (s != "true") in.fail("neither true nor false");
    send_challenge();
    step_ = old_name_ ? step::b_complement : step::b_reply;
    return true;
}

bool handshake::on_complement(bytes_view m) {
    reader in(m, "handshake complement");
    if (in.u8() != tag_complement) in.fail("not a complement ('c') message");
    std::uint64_t high = in.u32();
    peer_.creation = in.u32();
    peer_.flags = (peer_.flags & 0xFFFF'FFFFull) | high << 32;
    if (!check_flags(false)) return false;
    step_ = step::b_reply;
    return true;
}

bool handshake::on_reply(bytes_view m) {
    reader in(m, "handshake challenge_reply");
    if (in.u8() != tag_reply) in.fail("not a challenge_reply");
    std::uint32_t challenge = in.u32();
    if (in.left() != 16) in.fail("digest is not 16 bytes");
    if (!same_digest(in.rest(), handshake_digest(cfg_.cookie, my_challenge_)))
        return fail(handshake_failure::bad_cookie,
                    fmt::format("challenge_reply from {}: digest mismatch (cookie)", peer_.node));
    byte_buffer a{tag_ack};
    put_bytes(a, handshake_digest(cfg_.cookie, challenge));
    emit(a);
    state_ = state::done;
    step_ = step::finished;
    return false;
}

} // namespace erl::detail::dist
