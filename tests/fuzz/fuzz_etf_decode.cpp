// libFuzzer target: etf::decode must never crash, over-read or hang, whatever the bytes; what
// it accepts must print, re-encode and decode again to an equal term.
#include <erl/etf.hpp>
#include <erl/term.hpp>

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    erl::etf::decode_options opts;
    opts.max_inflated_size = 1 << 20;
    opts.atom_table_limit = 0; // keep fuzzed atoms out of the atom table
    try {
        erl::term t = erl::etf::decode({data, size}, opts);
        (void)t.to_string();
        (void)t.hash();
        auto again = erl::etf::decode(erl::etf::encode(t), opts);
        if (!(again == t)) std::abort();
    } catch (const erl::etf_error&) {
    }
    return 0;
}
