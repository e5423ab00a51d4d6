// The connected phase: u32-length packets (length 0 is a tick) and the pass-through packet
// format `'p' 131 Control [131 Payload]` that a connection without DIST_HDR_ATOM_CACHE and
// FRAGMENTS uses in both directions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include <erl/etf.hpp>

#include "dist/control.hpp"
#include "dist/wire.hpp"

namespace erl::detail::dist {

// Splits the received byte stream into packets. A packet longer than the limit (the peer would
// make us buffer it whole) is an error: the connection must be closed.
class packet_reader {
  public:
    static constexpr std::size_t default_max_packet = std::size_t(64) << 20;

    explicit packet_reader(std::size_t max_packet = default_max_packet) : max_(max_packet) {}

    void feed(bytes_view bytes);
    // The next complete packet, or nullopt until more bytes arrive. An empty body is a tick.
    // The view stays valid until the next feed() or next(). Throws protocol_error when a
    // packet announces more than the limit.
    std::optional<bytes_view> next();
    // Bytes received but not yet returned as packets.
    std::size_t buffered() const noexcept { return buf_.size() - pos_; }

  private:
    std::size_t max_;
    byte_buffer buf_;
    std::size_t pos_ = 0;
};

// Decodes a pass-through packet body (not a tick). The terms are decoded with `opts`, whose
// atom_table_limit keeps a flood of fresh atoms out of the atom table (docs/terms.md). Throws
// protocol_error for anything malformed: a header-framed packet (131,68/69/70: FRAGMENTS or
// the atom cache were never negotiated), bad ETF, trailing bytes, or a bad control message.
incoming decode_packet(bytes_view body, const connection_nodes& nodes,
                       const etf::decode_options& opts = {});

// A whole packet (u32 length included) for a message, in the wire form the negotiated flags
// call for (see make_control).
byte_buffer encode_packet(const control_message& m, std::uint64_t negotiated_flags,
                          std::optional<term> message = std::nullopt);
// The same for a control tuple built already.
byte_buffer encode_packet(const outgoing& o);
// A tick: four zero bytes.
byte_buffer tick_packet();

} // namespace erl::detail::dist
