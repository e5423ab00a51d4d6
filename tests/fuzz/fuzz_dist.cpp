// libFuzzer target for the distribution protocol's decoders: whatever the bytes, the EPMD reply
// decoders, both handshake roles and the connected-phase packet reader and decoder must answer
// with a result or a protocol_error, never crash, over-read or hang. The first input byte picks
// the decoder; a decoded packet must re-encode to a packet that decodes again to the same kind
// of message.
#include "dist/epmd.hpp"
#include "dist/framing.hpp"
#include "dist/handshake.hpp"

#include <cstdlib>

namespace dist = erl::detail::dist;

namespace {

const dist::connection_nodes nodes{erl::atom("cpp@h"), erl::atom("peer@h")};

void epmd_replies(dist::bytes_view in) {
    std::size_t used = 0;
    try {
        if (auto r = dist::epmd::decode_alive2_response(in, used); r && used > in.size())
            std::abort();
    } catch (const dist::protocol_error&) {
    }
    try {
        if (auto r = dist::epmd::decode_port2_response(in, used); r && used > in.size())
            std::abort();
    } catch (const dist::protocol_error&) {
    }
    try {
        (void)dist::epmd::decode_names_response(in);
    } catch (const dist::protocol_error&) {
    }
}

void handshakes(dist::bytes_view in) {
    dist::handshake_config c;
    c.node = "cpp@h";
    c.cookie = "cookie";
    c.challenge_source = [] { return 42u; };
    auto b = dist::handshake::accept(c);
    b.feed(in);
    if (b.current() == dist::handshake::state::awaiting_status) {
        b.answer(dist::handshake_status::ok);
        b.feed(in);
    }
    auto a = dist::handshake::initiate(c, "peer@h");
    a.feed(in);
    (void)a.take_leftover();
}

void packets(dist::bytes_view in) {
    erl::etf::decode_options opts;
    opts.atom_table_limit = 0; // fuzzed atoms stay out of the table
    opts.max_inflated_size = 1 << 20;
    dist::packet_reader r(1 << 20);
    r.feed(in);
    try {
        while (auto p = r.next()) {
            if (p->empty()) continue;
            try {
                auto msg = dist::decode_packet(*p, nodes, opts);
                (void)msg;
            } catch (const dist::protocol_error&) {
            }
        }
    } catch (const dist::protocol_error&) {
    }
    // The bytes as one packet body: what decodes must re-encode (in erlcpp's wire forms) to a
    // packet that decodes again.
    dist::incoming msg;
    try {
        msg = dist::decode_packet(in, nodes, opts);
    } catch (const dist::protocol_error&) {
        return;
    }
    if (msg.trace_token) return; // TT forms are not sent by erlcpp
    auto packet = dist::encode_packet(
        dist::make_control(msg.control, dist::dflag::erlcpp_default, msg.payload));
    auto back = dist::decode_packet(dist::bytes_view(packet).subspan(4), nodes, opts);
    if (back.control.index() != msg.control.index()) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    dist::bytes_view in(data + 1, size - 1);
    switch (data[0] % 3) {
    case 0:
        epmd_replies(in);
        break;
    case 1:
        handshakes(in);
        break;
    default:
        packets(in);
        break;
    }
    return 0;
}
