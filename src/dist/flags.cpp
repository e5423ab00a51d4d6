#include "dist/flags.hpp"

#include <fmt/format.h>

namespace erl::detail::dist {

std::string flags_to_string(std::uint64_t flags) {
    static constexpr struct {
        std::uint64_t bit;
        const char* name;
    } names[] = {
        {dflag::published, "PUBLISHED"},
        {dflag::atom_cache, "ATOM_CACHE"},
        {dflag::extended_references, "EXTENDED_REFERENCES"},
        {dflag::dist_monitor, "DIST_MONITOR"},
        {dflag::fun_tags, "FUN_TAGS"},
        {dflag::dist_monitor_name, "DIST_MONITOR_NAME"},
        {dflag::hidden_atom_cache, "HIDDEN_ATOM_CACHE"},
        {dflag::new_fun_tags, "NEW_FUN_TAGS"},
        {dflag::extended_pids_ports, "EXTENDED_PIDS_PORTS"},
        {dflag::export_ptr_tag, "EXPORT_PTR_TAG"},
        {dflag::bit_binaries, "BIT_BINARIES"},
        {dflag::new_floats, "NEW_FLOATS"},
        {dflag::unicode_io, "UNICODE_IO"},
        {dflag::dist_hdr_atom_cache, "DIST_HDR_ATOM_CACHE"},
        {dflag::small_atom_tags, "SMALL_ATOM_TAGS"},
        {dflag::utf8_atoms, "UTF8_ATOMS"},
        {dflag::map_tag, "MAP_TAG"},
        {dflag::big_creation, "BIG_CREATION"},
        {dflag::send_sender, "SEND_SENDER"},
        {dflag::big_seqtrace_labels, "BIG_SEQTRACE_LABELS"},
        {dflag::exit_payload, "EXIT_PAYLOAD"},
        {dflag::fragments, "FRAGMENTS"},
        {dflag::handshake_23, "HANDSHAKE_23"},
        {dflag::unlink_id, "UNLINK_ID"},
        {dflag::mandatory_25_digest, "MANDATORY_25_DIGEST"},
        {dflag::spawn, "SPAWN"},
        {dflag::name_me, "NAME_ME"},
        {dflag::v4_nc, "V4_NC"},
        {dflag::alias, "ALIAS"},
    };
    std::string s;
    std::uint64_t rest = flags;
    for (const auto& n : names) {
        if (!(flags & n.bit)) continue;
        if (!s.empty()) s.push_back('|');
        s += n.name;
        rest &= ~n.bit;
    }
    if (rest) s += fmt::format("{}{:#x}", s.empty() ? "" : "|", rest);
    return s.empty() ? "0" : s;
}

} // namespace erl::detail::dist
