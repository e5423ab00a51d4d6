// libFuzzer target: etf::decode must never crash, over-read or hang, whatever the bytes; what
// it accepts must print, re-encode and decode again to an equal term. Every input is decoded
// both ways the decoder builds terms (one arena per message, and one block per payload as for
// large inputs), which must agree: the same term, or the same error at the same offset.
#include <erl/detail/term_util.hpp>
#include <erl/etf.hpp>
#include <erl/term.hpp>

#include <cstdlib>
#include <optional>
#include <string>

namespace {

struct outcome {
    std::optional<erl::term> term;
    std::size_t offset = 0;
    std::string reason;
};

outcome decode(const std::uint8_t* data, std::size_t size, std::size_t arena_limit) {
    erl::etf::decode_options opts;
    opts.max_inflated_size = 1 << 20;
    opts.atom_table_limit = 0; // keep fuzzed atoms out of the atom table
    erl::detail::set_decode_arena_limit(arena_limit);
    outcome o;
    try {
        o.term = erl::etf::decode({data, size}, opts);
    } catch (const erl::etf_error& e) {
        o.offset = e.offset();
        o.reason = e.reason();
    }
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    outcome a = decode(data, size, std::size_t(256) << 10); // arena
    outcome h = decode(data, size, 0);                      // one block per payload
    if (a.term.has_value() != h.term.has_value()) std::abort();
    if (!a.term) {
        if (a.offset != h.offset || a.reason != h.reason) std::abort();
        return 0;
    }
    if (!(*a.term == *h.term)) std::abort();
    (void)a.term->to_string();
    (void)a.term->hash();
    erl::etf::decode_options opts;
    opts.max_inflated_size = 1 << 20;
    opts.atom_table_limit = 0;
    erl::detail::set_decode_arena_limit(std::size_t(256) << 10);
    auto again = erl::etf::decode(erl::etf::encode(*a.term), opts);
    if (!(again == *a.term)) std::abort();
    a = {};
    if (h.term->to_string() != again.to_string()) std::abort(); // h outlives a's arena
    return 0;
}
