// The distribution capability flags (DFLAG_*) and the set erlcpp advertises.
#pragma once

#include <cstdint>
#include <string>

namespace erl::detail::dist {

namespace dflag {
inline constexpr std::uint64_t published = 0x1;
inline constexpr std::uint64_t atom_cache = 0x2;
inline constexpr std::uint64_t extended_references = 0x4;
inline constexpr std::uint64_t dist_monitor = 0x8;
inline constexpr std::uint64_t fun_tags = 0x10;
inline constexpr std::uint64_t dist_monitor_name = 0x20;
inline constexpr std::uint64_t hidden_atom_cache = 0x40;
inline constexpr std::uint64_t new_fun_tags = 0x80;
inline constexpr std::uint64_t extended_pids_ports = 0x100;
inline constexpr std::uint64_t export_ptr_tag = 0x200;
inline constexpr std::uint64_t bit_binaries = 0x400;
inline constexpr std::uint64_t new_floats = 0x800;
inline constexpr std::uint64_t unicode_io = 0x1000;
inline constexpr std::uint64_t dist_hdr_atom_cache = 0x2000;
inline constexpr std::uint64_t small_atom_tags = 0x4000;
inline constexpr std::uint64_t utf8_atoms = 0x10000;
inline constexpr std::uint64_t map_tag = 0x20000;
inline constexpr std::uint64_t big_creation = 0x40000;
inline constexpr std::uint64_t send_sender = 0x80000;
inline constexpr std::uint64_t big_seqtrace_labels = 0x100000;
inline constexpr std::uint64_t exit_payload = 0x400000;
inline constexpr std::uint64_t fragments = 0x800000;
inline constexpr std::uint64_t handshake_23 = 0x1000000;
inline constexpr std::uint64_t unlink_id = 0x2000000;
// Bit 26 (the OTP documentation's "1 bsl 36" is a misprint): a peer that sets it has the whole
// OTP 25 mandatory set, whatever its other bits say.
inline constexpr std::uint64_t mandatory_25_digest = 0x4000000;
inline constexpr std::uint64_t spawn = 0x1'0000'0000;
inline constexpr std::uint64_t name_me = 0x2'0000'0000;
inline constexpr std::uint64_t v4_nc = 0x4'0000'0000;
inline constexpr std::uint64_t alias = 0x8'0000'0000;

// What OTP 25 requires of every peer (erts_internal:get_dflags() on 25.2: 16#1070F94).
inline constexpr std::uint64_t mandatory_25 =
    extended_references | fun_tags | new_fun_tags | extended_pids_ports | export_ptr_tag |
    bit_binaries | new_floats | utf8_atoms | map_tag | big_creation | handshake_23;
// OTP 26 and 27 add V4_NC (64-bit pid/port data, references of up to 5 words) and UNLINK_ID.
inline constexpr std::uint64_t mandatory_26 = mandatory_25 | v4_nc | unlink_id;
static_assert(mandatory_25 == 0x1070F94 && mandatory_26 == 0x4'0307'0F94);

// What erlcpp offers (OR `published` for a visible node):
// * the OTP 26 mandatory set, so OTP 25, 26 and 27 all accept us, and MANDATORY_25_DIGEST,
//   which OTP 25+ reads as "has the 25 set" (belt and braces; OTP 27's docs call it mandatory);
// * DIST_MONITOR and DIST_MONITOR_NAME: without them OTP sends no monitor signals at all, and a
//   gen_server:call to a missing name waits for its timeout instead of failing with noproc;
// * SEND_SENDER, EXIT_PAYLOAD, UNLINK_ID: the modern control messages (22, 24/26/28, 35/36),
//   which carry what OTP's own nodes send each other;
// * ALIAS: without it OTP silently drops sends to our alias references (gen_server replies to
//   `[alias|Ref]` tags); SPAWN: without it erpc/rpc into us fail at once with notsup;
// * UNICODE_IO, SMALL_ATOM_TAGS, BIG_SEQTRACE_LABELS: harmless, the decoder reads all of it.
// Never DIST_HDR_ATOM_CACHE nor FRAGMENTS: negotiating either switches *every* packet, in both
// directions, to the dist-header framing (131,68 / 69 / 70); without them both sides use the
// pass-through framing ('p' + terms with their own 131 byte), which is what this layer speaks.
// Nor NAME_ME (a request for a dynamic name, not a capability) or the obsolete cache flags.
// Tested live against OTP 25.2; OTP 26/27 are covered by the mandatory-26 set (not run here).
inline constexpr std::uint64_t erlcpp_default =
    mandatory_26 | mandatory_25_digest | dist_monitor | dist_monitor_name | unicode_io |
    small_atom_tags | send_sender | big_seqtrace_labels | exit_payload | spawn | alias;
static_assert(erlcpp_default == 0xD'075F'5FBC);

// The framing the negotiated flags imply: header framing if either flag is on.
inline constexpr bool uses_dist_header(std::uint64_t negotiated) noexcept {
    return (negotiated & (dist_hdr_atom_cache | fragments)) != 0;
}
} // namespace dflag

// A peer's flags as OTP reads them: MANDATORY_25_DIGEST stands for the whole OTP 25 set.
inline constexpr std::uint64_t expand_peer_flags(std::uint64_t f) noexcept {
    return (f & dflag::mandatory_25_digest) ? (f | dflag::mandatory_25) : f;
}

// "EXTENDED_REFERENCES|DIST_MONITOR|...|0x8000" for logs and test failures.
std::string flags_to_string(std::uint64_t flags);

} // namespace erl::detail::dist
