#include <erl/etf.hpp>

#include <erl/detail/term_util.hpp>

#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

namespace erl {

using detail::term_access;
using detail::term_tag;

etf_error::etf_error(std::size_t offset, std::string reason)
    : std::runtime_error(fmt::format("ETF: at byte {}: {}", offset, reason)), offset_(offset),
      reason_(std::move(reason)) {}

namespace etf {
namespace {

enum tag : std::uint8_t {
    NEW_FLOAT_EXT = 70,
    BIT_BINARY_EXT = 77,
    COMPRESSED = 80,
    ATOM_CACHE_REF = 82,
    NEW_PID_EXT = 88,
    NEW_PORT_EXT = 89,
    NEWER_REFERENCE_EXT = 90,
    SMALL_INTEGER_EXT = 97,
    INTEGER_EXT = 98,
    FLOAT_EXT = 99,
    ATOM_EXT = 100,
    REFERENCE_EXT = 101,
    PORT_EXT = 102,
    PID_EXT = 103,
    SMALL_TUPLE_EXT = 104,
    LARGE_TUPLE_EXT = 105,
    NIL_EXT = 106,
    STRING_EXT = 107,
    LIST_EXT = 108,
    BINARY_EXT = 109,
    SMALL_BIG_EXT = 110,
    LARGE_BIG_EXT = 111,
    NEW_FUN_EXT = 112,
    EXPORT_EXT = 113,
    NEW_REFERENCE_EXT = 114,
    SMALL_ATOM_EXT = 115,
    MAP_EXT = 116,
    FUN_EXT = 117,
    ATOM_UTF8_EXT = 118,
    SMALL_ATOM_UTF8_EXT = 119,
    V4_PORT_EXT = 120,
    LOCAL_EXT = 121,
};

// ---------------------------------------------------------------------------------------------
// Encoding

// Writes through a raw pointer into `out`, whose size serves as the capacity while encoding
// (grown geometrically; trimmed to what was written by finish()).
struct writer {
    std::vector<std::uint8_t>& out;
    std::uint8_t* p;
    std::uint8_t* end;

    explicit writer(std::vector<std::uint8_t>& o, std::size_t hint = 64) : out(o) {
        std::size_t used = out.size();
        out.resize(used + hint);
        p = out.data() + used;
        end = out.data() + out.size();
    }
    void finish() { out.resize(std::size_t(p - out.data())); }
    std::size_t offset() const noexcept { return std::size_t(p - out.data()); }

    void ensure(std::size_t n) {
        if (std::size_t(end - p) < n) [[unlikely]]
            grow(n);
    }
    [[gnu::noinline]] void grow(std::size_t n) {
        std::size_t used = offset();
        out.resize(std::max(out.size() * 2, used + n + 64));
        p = out.data() + used;
        end = out.data() + out.size();
    }
    // Unchecked stores: callers ensure() room first.
    void put8(std::uint32_t v) { *p++ = std::uint8_t(v); }
    void put16(std::uint32_t v) {
        p[0] = std::uint8_t(v >> 8);
        p[1] = std::uint8_t(v);
        p += 2;
    }
    void put32(std::uint32_t v) {
        p[0] = std::uint8_t(v >> 24);
        p[1] = std::uint8_t(v >> 16);
        p[2] = std::uint8_t(v >> 8);
        p[3] = std::uint8_t(v);
        p += 4;
    }
    void put64(std::uint64_t v) {
        put32(std::uint32_t(v >> 32));
        put32(std::uint32_t(v));
    }
    void putn(const void* b, std::size_t n) {
        if (n) std::memcpy(p, b, n);
        p += n;
    }

    void u8(std::uint32_t v) {
        ensure(1);
        put8(v);
    }
    void u16(std::uint32_t v) {
        ensure(2);
        put16(v);
    }
    void u32(std::uint32_t v) {
        ensure(4);
        put32(v);
    }
    void u64(std::uint64_t v) {
        ensure(8);
        put64(v);
    }
    void bytes(std::span<const std::uint8_t> b) {
        ensure(b.size());
        putn(b.data(), b.size());
    }
    void text(std::string_view s) {
        ensure(s.size());
        putn(s.data(), s.size());
    }

    void atom_text(std::string_view name) {
        ensure(3 + name.size());
        if (name.size() <= 255) {
            put8(SMALL_ATOM_UTF8_EXT);
            put8(std::uint32_t(name.size()));
        } else {
            put8(ATOM_UTF8_EXT);
            put16(std::uint32_t(name.size()));
        }
        putn(name.data(), name.size());
    }

    void big(const bigint& b) {
        auto digits = b.to_le_bytes();
        if (digits.size() <= 255) {
            u8(SMALL_BIG_EXT);
            u8(std::uint32_t(digits.size()));
        } else {
            u8(LARGE_BIG_EXT);
            u32(std::uint32_t(digits.size()));
        }
        u8(b.negative() ? 1 : 0);
        bytes(digits);
    }

    void integer(std::int64_t v) {
        ensure(11);
        if (v >= 0 && v <= 255) {
            put8(SMALL_INTEGER_EXT);
            put8(std::uint32_t(v));
        } else if (v >= INT32_MIN && v <= INT32_MAX) {
            put8(INTEGER_EXT);
            put32(std::uint32_t(std::int32_t(v)));
        } else {
            // SMALL_BIG with the magnitude's bytes, little-endian.
            std::uint64_t m = v < 0 ? ~std::uint64_t(v) + 1 : std::uint64_t(v);
            std::uint8_t d[8];
            std::uint32_t n = 0;
            while (m) {
                d[n++] = std::uint8_t(m);
                m >>= 8;
            }
            put8(SMALL_BIG_EXT);
            put8(n);
            put8(v < 0 ? 1 : 0);
            putn(d, n);
        }
    }

    void value(const term& t) {
        switch (term_access::tag(t)) {
        case term_tag::small:
            integer(t.as_int64());
            return;
        case term_tag::big:
            big(t.as_bigint());
            return;
        case term_tag::flt: {
            double d = t.as_double();
            std::uint64_t bits;
            std::memcpy(&bits, &d, sizeof bits);
            u8(NEW_FLOAT_EXT);
            u64(bits);
            return;
        }
        case term_tag::atom:
        case term_tag::atom_text:
            atom_text(t.atom_name());
            return;
        case term_tag::nil:
            u8(NIL_EXT);
            return;
        case term_tag::tuple: {
            auto e = term_access::as<detail::tuple_node>(t).elements();
            ensure(5);
            if (e.size() <= 255) {
                put8(SMALL_TUPLE_EXT);
                put8(std::uint32_t(e.size()));
            } else {
                put8(LARGE_TUPLE_EXT);
                put32(std::uint32_t(e.size()));
            }
            for (const auto& x : e)
                value(x);
            return;
        }
        case term_tag::list: {
            const auto& ln = term_access::as<detail::list_node>(t);
            auto e = ln.elements();
            const term& tail = ln.tail;
            // Lists of bytes go as STRING_EXT, as OTP sends them.
            if (tail.is_nil() && e.size() <= 65535) {
                ensure(3 + e.size());
                std::uint8_t* q = p + 3;
                bool bytes_only = true;
                for (const auto& x : e) {
                    if (!x.is_small_int()) {
                        bytes_only = false;
                        break;
                    }
                    std::int64_t c = x.as_int64();
                    if (c < 0 || c > 255) {
                        bytes_only = false;
                        break;
                    }
                    *q++ = std::uint8_t(c);
                }
                if (bytes_only) {
                    put8(STRING_EXT);
                    put16(std::uint32_t(e.size()));
                    p = q;
                    return;
                }
            }
            ensure(5);
            put8(LIST_EXT);
            put32(std::uint32_t(e.size()));
            for (const auto& x : e)
                value(x);
            value(tail);
            return;
        }
        case term_tag::map: {
            auto e = term_access::as<detail::map_node>(t).entries();
            ensure(5);
            put8(MAP_EXT);
            put32(std::uint32_t(e.size()));
            for (const auto& [k, v] : e) {
                value(k);
                value(v);
            }
            return;
        }
        case term_tag::bits: {
            const auto& n = term_access::as<detail::bits_node>(t);
            ensure(6 + n.size);
            if (n.tail_bits() == 8) {
                put8(BINARY_EXT);
                put32(std::uint32_t(n.size));
            } else {
                put8(BIT_BINARY_EXT);
                put32(std::uint32_t(n.size));
                put8(n.tail_bits());
            }
            putn(n.bytes().data(), n.size);
            return;
        }
        case term_tag::pid: {
            const auto& n = term_access::as<detail::pid_node>(t);
            u8(NEW_PID_EXT);
            value(n.node);
            u32(n.id);
            u32(n.serial);
            u32(n.creation);
            return;
        }
        case term_tag::port: {
            const auto& n = term_access::as<detail::port_node>(t);
            bool v4 = n.id > 0xFFFFFFFFull;
            u8(v4 ? V4_PORT_EXT : NEW_PORT_EXT);
            value(n.node);
            if (v4)
                u64(n.id);
            else
                u32(std::uint32_t(n.id));
            u32(n.creation);
            return;
        }
        case term_tag::ref: {
            const auto& n = term_access::as<detail::ref_node>(t);
            u8(NEWER_REFERENCE_EXT);
            u16(n.len);
            value(n.node);
            u32(n.creation);
            for (std::size_t i = 0; i < n.len; ++i)
                u32(n.words[i]);
            return;
        }
        case term_tag::export_fun: {
            const auto& n = term_access::as<detail::export_node>(t);
            u8(EXPORT_EXT);
            value(n.module);
            value(n.function);
            u8(SMALL_INTEGER_EXT);
            u8(n.arity);
            return;
        }
        case term_tag::local_fun: {
            const auto& n = term_access::as<detail::local_fun_node>(t);
            u8(NEW_FUN_EXT);
            std::size_t size_at = offset();
            u32(0); // patched below: bytes from this field to the end of the free variables
            u8(n.arity);
            bytes(n.uniq);
            u32(n.index);
            u32(n.num_free);
            value(n.module);
            value(n.old_index);
            value(n.old_uniq);
            value(n.pid);
            for (const auto& v : n.free_vars())
                value(v);
            auto size = std::uint32_t(offset() - size_at);
            for (int i = 0; i < 4; ++i)
                out[size_at + std::size_t(i)] = std::uint8_t(size >> (24 - 8 * i));
            return;
        }
        }
    }
};

} // namespace

void encode_body(std::vector<std::uint8_t>& out, const term& t) {
    std::size_t start = out.size();
    writer w(out);
    try {
        w.value(t);
    } catch (...) {
        out.resize(start); // nothing half-written stays behind
        throw;
    }
    w.finish();
}

std::vector<std::uint8_t> encode(const term& t, const encode_options& opts) {
    std::vector<std::uint8_t> out;
    {
        writer w(out, 256);
        w.put8(version_magic);
        w.value(t);
        w.finish();
    }
    if (opts.compression < 0) return out;
    std::size_t body = out.size() - 1;
    uLongf bound = compressBound(uLong(body));
    std::vector<std::uint8_t> z(6 + bound);
    z[0] = version_magic;
    z[1] = COMPRESSED;
    for (int i = 0; i < 4; ++i)
        z[2 + std::size_t(i)] = std::uint8_t(body >> (24 - 8 * i));
    if (compress2(z.data() + 6, &bound, out.data() + 1, uLong(body),
                  std::min(opts.compression, 9)) != Z_OK)
        return out;
    if (6 + bound >= out.size()) return out; // not worth it, as Erlang decides too
    z.resize(6 + bound);
    return z;
}

// ---------------------------------------------------------------------------------------------
// Decoding: one loop over the input with an explicit stack of open containers.

namespace {

// Big-endian reads (callers checked that the bytes are there).
inline std::uint32_t be16(const std::uint8_t* p) noexcept {
    return std::uint32_t(p[0]) << 8 | p[1];
}
inline std::uint32_t be32(const std::uint8_t* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
    return v;
}
inline std::uint64_t be64(const std::uint8_t* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    return v;
}
// Eight bytes as they lie in memory (for comparing and hashing names).
inline std::uint64_t raw64(const void* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}
constexpr std::uint64_t high_bits = 0x8080808080808080ull;

// An open container. Its term already sits in its parent's slot (`holder`) or in the root,
// so a failure anywhere releases whatever was built through the root alone.
enum class open_kind : std::uint8_t { tuple, map, list, list_tail, fun };
struct frame {
    term* holder;              // the slot holding this container's term
    detail::term_node* node;   // its payload
    std::size_t at;            // offset of its tag, for errors
    std::uint32_t parent_left; // the parent's children still to come, this one included
    std::uint32_t len;         // list: elements announced so far
    open_kind kind;
};

// The decoder's frame stack, kept per thread between decodes. A nested decoder (the term
// inside a compressed one) finds it taken and uses its own. A stack that grew large is given
// back rather than kept.
struct decode_stack {
    std::vector<frame> frames;
    bool busy = false;
};
thread_local decode_stack t_stack;

// Decoded atoms up to 32 bytes of ASCII, by their bytes: a per-thread direct-mapped cache in
// front of the atom table (whose lookup takes a lock and hashes the name). Only interned atoms
// enter it, and atoms are never removed from the table, so an entry cannot go stale. ASCII
// names mean the same under every atom tag (Latin-1 or UTF-8). Zero-initialised: `len1` 0 is
// an empty entry.
struct atom_key {
    std::uint64_t w[4]; // the first 16 bytes zero-padded; beyond 16 bytes, the last 16
    std::uint32_t len;
};
struct atom_entry {
    std::uint64_t w[4];
    std::uint32_t len1; // the name's length + 1
    std::uint32_t index;
};
constexpr std::size_t atom_cache_bits = 10; // 1024 entries: 512 sets of two ways (40 KiB)
thread_local atom_entry t_atom_cache[std::size_t(1) << atom_cache_bits];

// The key of a name of at most 32 bytes at p (the input holds them); `end` is the input's end:
// bytes up to it may be read, none beyond.
inline void make_atom_key(const std::uint8_t* p, std::size_t len, const std::uint8_t* end,
                          atom_key& k) noexcept {
    k.len = std::uint32_t(len);
    if (len > 16) {
        k.w[0] = raw64(p);
        k.w[1] = raw64(p + 8);
        k.w[2] = raw64(p + len - 16);
        k.w[3] = raw64(p + len - 8);
        return;
    }
    k.w[2] = k.w[3] = 0;
    if (std::size_t(end - p) >= 16) {
        k.w[0] = raw64(p);
        k.w[1] = raw64(p + 8);
    } else {
        std::uint8_t b[16] = {};
        if (len) std::memcpy(b, p, len);
        k.w[0] = raw64(b);
        k.w[1] = raw64(b + 8);
    }
    // Keep the name's bytes only (little- or big-endian, the same bytes are kept).
    auto keep = [](std::uint64_t w, std::size_t n) noexcept {
        if (n >= 8) return w;
        std::uint64_t m = (std::uint64_t(1) << (8 * n)) - 1;
        if constexpr (std::endian::native == std::endian::big) m = ~(~std::uint64_t(0) >> (8 * n));
        return w & m;
    };
    k.w[0] = keep(k.w[0], len);
    k.w[1] = keep(k.w[1], len > 8 ? len - 8 : 0);
}
// The first entry of the key's set (the second is the next one).
inline std::size_t atom_set(const atom_key& k) noexcept {
    std::uint64_t h = k.w[0] ^ (k.w[1] * 0x9E3779B97F4A7C15ull) ^ k.w[3] ^ k.len;
    return std::size_t((h * 0xBF58476D1CE4E5B9ull) >> (64 - atom_cache_bits)) & ~std::size_t(1);
}
inline bool is_ascii(const atom_key& k) noexcept {
    return ((k.w[0] | k.w[1] | k.w[2] | k.w[3]) & high_bits) == 0;
}

// Messages up to this size are decoded into one arena (see term_nodes.hpp): one allocation
// and one free per message instead of one per payload. A payload copied out of such a message
// keeps the whole arena alive, so larger inputs get one heap block per payload instead, which
// bounds what a kept sub-term can retain to a small multiple of this size.
std::atomic<std::size_t> arena_max_input{std::size_t(256) << 10};

// The first arena chunk: enough for typical messages (payload headers, 16 bytes per element
// and the bytes of binaries: about 1.5 to 3 times the input); a short estimate only costs a
// further chunk (each at least twice the previous). Capped, because `input` may hold more than
// this term (decode_body on a distribution message), and a short first term must not reserve
// three times the rest of the message.
std::size_t first_chunk_size(std::size_t input) noexcept {
    return std::min<std::size_t>((3 * input + 256 + 15) & ~std::size_t(15), 64 << 10);
}

class decoder {
  public:
    decoder(std::span<const std::uint8_t> in, const decode_options& o, std::size_t pos,
            bool inflated)
        : base_(in.data()), p_(in.data() + pos), end_(in.data() + in.size()), opts_(o),
          inflated_(inflated),
          use_arena_(in.size() - pos <= arena_max_input.load(std::memory_order_relaxed)),
          arena_(use_arena_ ? first_chunk_size(in.size() - pos) : 0) {
        intern_ = atom::table_size() < opts_.atom_table_limit;
        if (!t_stack.busy) {
            t_stack.busy = true;
            frames_ = &t_stack.frames;
        } else {
            frames_ = &own_frames_;
        }
    }
    ~decoder() {
        if (frames_ != &t_stack.frames) return;
        if (frames_->size() > 1024) std::vector<frame>().swap(*frames_);
        t_stack.busy = false;
    }
    decoder(const decoder&) = delete;
    decoder& operator=(const decoder&) = delete;

    std::size_t pos() const noexcept { return std::size_t(p_ - base_); }

    term run(bool top_level) {
        if (top_level && p_ < end_ && *p_ == COMPRESSED) return inflate_and_decode();
        term root;              // the term being built: what fails is released through it
        term* slot = &root;     // where the next value goes
        std::uint32_t left = 1; // values still to come in the innermost open container
        std::size_t depth = 0;  // open containers
        const std::uint8_t* p = p_;
        const std::uint8_t* const end = end_;
        for (;;) {
        next_value:
            // One value into *slot.
            const std::uint8_t* tag_at = p;
            if (p == end) truncated(p, 1);
            std::uint8_t t = *p++;
            switch (t) {
            case SMALL_INTEGER_EXT:
                need(p, 1);
                term_access::put_small(slot, *p++);
                break;
            case INTEGER_EXT:
                need(p, 4);
                term_access::put_small(slot, std::int32_t(be32(p)));
                p += 4;
                break;
            case SMALL_ATOM_UTF8_EXT:
            case SMALL_ATOM_EXT: {
                need(p, 1);
                std::size_t len = *p++;
                need(p, len);
                atom_value(t, tag_at, p, len, slot);
                p += len;
                break;
            }
            case ATOM_UTF8_EXT:
            case ATOM_EXT: {
                need(p, 2);
                std::size_t len = be16(p);
                p += 2;
                need(p, len);
                atom_value(t, tag_at, p, len, slot);
                p += len;
                break;
            }
            case NIL_EXT:
                term_access::put_nil(slot);
                break;
            case NEW_FLOAT_EXT: {
                need(p, 8);
                std::uint64_t bits = be64(p);
                double d;
                std::memcpy(&d, &bits, sizeof d);
                if (!std::isfinite(d)) fail(tag_at, "float is not finite");
                term_access::put_float(slot, d);
                p += 8;
                break;
            }
            case BINARY_EXT: {
                need(p, 4);
                std::size_t n = be32(p);
                p += 4;
                need(p, n);
                term_access::put_node(slot, bits_node(p, n, 8));
                p += n;
                break;
            }
            case SMALL_TUPLE_EXT:
            case LARGE_TUPLE_EXT: {
                std::uint32_t n = count_field(p, t == SMALL_TUPLE_EXT, tag_at, "tuple", 1, 0);
                auto* node = make<detail::tuple_node>(detail::tuple_node::bytes(n), n);
                term_access::put_node(slot, node);
                if (n == 0) break;
                open(depth, tag_at, slot, left, node, open_kind::tuple, 0, node->elems(), n);
                slot = node->elems();
                left = n;
                goto next_value;
            }
            case LIST_EXT: {
                std::uint32_t n = count_field(p, false, tag_at, "list", 1, 1);
                if (n == 0) goto next_value; // [ | Tail] is Tail: the next term stands for it
                auto* node = make<detail::list_node>(detail::list_node::bytes(n), n);
                term_access::put_node(slot, node);
                open(depth, tag_at, slot, left, node, open_kind::list, n, node->elems(), n);
                if (!use_arena_) term_access::put_nil(&node->tail);
                slot = node->elems();
                left = n;
                goto next_value;
            }
            case MAP_EXT: {
                std::uint32_t n = count_field(p, false, tag_at, "map", 2, 0);
                auto* node = make<detail::map_node>(detail::map_node::bytes(n), n);
                term_access::put_node(slot, node);
                if (n == 0) break;
                // Keys and values alternate: the entries seen as a sequence of terms.
                term* first = reinterpret_cast<term*>(node->entries());
                open(depth, tag_at, slot, left, node, open_kind::map, 0, first, 2 * n);
                slot = first;
                left = 2 * n;
                goto next_value;
            }
            case STRING_EXT: {
                need(p, 2);
                std::uint32_t n = be16(p);
                p += 2;
                need(p, n);
                if (n == 0) {
                    term_access::put_nil(slot);
                    break;
                }
                auto* node = make<detail::list_node>(detail::list_node::bytes(n), n);
                term_access::put_nil(&node->tail);
                term* e = node->elems();
                for (std::uint32_t i = 0; i < n; ++i)
                    term_access::put_small(e + i, p[i]);
                term_access::put_node(slot, node);
                p += n;
                break;
            }
            case NEW_PID_EXT:
            case PID_EXT:
            case NEW_PORT_EXT:
            case V4_PORT_EXT:
            case PORT_EXT:
            case REFERENCE_EXT:
            case NEWER_REFERENCE_EXT:
            case NEW_REFERENCE_EXT:
            case EXPORT_EXT:
                p = identifier(t, tag_at, p, slot);
                break;
            case NEW_FUN_EXT: {
                // Size, Arity, Uniq (16), Index, NumFree; then Module, OldIndex, OldUniq, Pid
                // and the free variables, decoded as the fun's children.
                need(p, 29);
                std::uint32_t size = be32(p);
                std::uint32_t num_free = be32(p + 25);
                if (size < 29 || size > std::size_t(end - p))
                    fail(tag_at, "fun size field disagrees with the input");
                if (std::uint64_t(num_free) + 4 > std::min<std::size_t>(end - p - 29, UINT32_MAX))
                    fail(tag_at, fmt::format("fun with {} free variables in {} bytes", num_free,
                                             end - p - 29));
                auto* node =
                    make<detail::local_fun_node>(detail::local_fun_node::bytes(num_free), num_free);
                node->arity = p[4];
                std::memcpy(node->uniq.data(), p + 5, 16);
                node->index = be32(p + 21);
                p += 29;
                // Module, OldIndex, OldUniq and Pid lie right before the free variables.
                term* first = &node->module;
                if (first + 4 != node->free()) fail(tag_at, "internal: fun layout");
                term_access::put_node(slot, node);
                open(depth, tag_at, slot, left, node, open_kind::fun, 0, first, 4 + num_free);
                slot = first;
                left = 4 + num_free;
                goto next_value;
            }
            default:
                p = rare_scalar(t, tag_at, p, slot);
                break;
            }
            // The value is in place: on to the next slot, closing the containers it completed.
            ++slot;
            if (--left != 0) [[likely]]
                continue;
            for (;;) {
                if (depth == 0) {
                    p_ = p;
                    return finish(std::move(root));
                }
                frame& f = (*frames_)[depth - 1];
                if (f.kind == open_kind::list) {
                    // The elements are in; the tail follows. A tail that is itself a list
                    // ([a | [b, c]] sent as a list whose tail is a list) joins this one,
                    // which stays flat and one payload.
                    auto* l = static_cast<detail::list_node*>(f.node);
                    if (p != end && *p == NIL_EXT) {
                        ++p;
                        term_access::put_nil(&l->tail);
                    } else if (p != end && *p == LIST_EXT) {
                        const std::uint8_t* at = p++;
                        std::uint32_t n = count_field(p, false, at, "list", 1, 1);
                        slot = grow_list(f, at, n);
                        left = n;
                        if (n == 0) continue; // the tail comes next again
                        goto next_value;
                    } else if (p != end && *p == STRING_EXT) {
                        const std::uint8_t* at = p++;
                        need(p, 2);
                        std::uint32_t n = be16(p);
                        p += 2;
                        need(p, n);
                        slot = grow_list(f, at, n);
                        for (std::uint32_t i = 0; i < n; ++i)
                            term_access::put_small(slot + i, p[i]);
                        p += n;
                        term_access::put_nil(&static_cast<detail::list_node*>(f.node)->tail);
                    } else {
                        f.kind = open_kind::list_tail;
                        slot = &l->tail;
                        left = 1;
                        goto next_value;
                    }
                }
                complete(f, p);
                slot = f.holder + 1;
                left = f.parent_left - 1;
                --depth;
                if (left != 0) break;
            }
        }
    }

  private:
    [[noreturn, gnu::cold, gnu::noinline]] void fail(std::size_t at, std::string why) const {
        if (inflated_) why += " (offset in the inflated data)";
        throw etf_error(at, std::move(why));
    }
    [[noreturn]] void fail(const std::uint8_t* at, std::string why) const {
        fail(std::size_t(at - base_), std::move(why));
    }
    // Fails unless n more bytes are there at p.
    void need(const std::uint8_t* p, std::size_t n) const {
        if (std::size_t(end_ - p) < n) [[unlikely]]
            truncated(p, n);
    }
    [[noreturn, gnu::cold, gnu::noinline]] void truncated(const std::uint8_t* p,
                                                          std::size_t n) const {
        fail(p, fmt::format("truncated: {} more bytes needed, {} left", n, end_ - p));
    }

    // A length of one byte or four at p, which is advanced past it.
    std::uint32_t length_field(const std::uint8_t*& p, bool one_byte) const {
        if (one_byte) {
            need(p, 1);
            return *p++;
        }
        need(p, 4);
        std::uint32_t n = be32(p);
        p += 4;
        return n;
    }

    // The decoded term: an arena term takes over the arena (count 1: the returned term).
    term finish(term t) {
        if (detail::arena* a = arena_.get()) {
            const detail::term_node* n = term_access::node(t);
            if (n && n->in_arena) {
                a->refs.store(1, std::memory_order_relaxed);
                arena_.release();
            }
        }
        return t;
    }

    // A payload of `bytes` bytes, in the arena or alone on the heap.
    template <typename N, typename... A>
    N* make(std::size_t bytes, A&&... args) {
        if (use_arena_) return arena_.make<N>(bytes, std::forward<A>(args)...);
        return detail::heap_make<N>(bytes, std::forward<A>(args)...);
    }
    // A payload's slots before its children arrive. Payloads on the heap own their children
    // and may be released half-built, so their slots start as []; an arena's payloads are
    // never walked (the arena is freed whole), so their slots are left as they are.
    void init_slots(term* s, std::size_t n) const noexcept {
        if (!use_arena_) std::uninitialized_default_construct_n(s, n);
    }

    // Opens a container (held in `holder`, one of its parent's `left` children) whose
    // `children` go to the slots from `first`.
    void open(std::size_t& depth, const std::uint8_t* at, term* holder, std::uint32_t left,
              detail::term_node* node, open_kind kind, std::uint32_t len, term* first,
              std::uint32_t children) {
        // The node already hangs in its parent's slot: its slots must be valid before anything
        // here can fail (too deep, out of memory), or releasing the root would walk garbage.
        init_slots(first, children);
        if (depth >= opts_.max_depth) [[unlikely]]
            fail(at, fmt::format("nesting deeper than {}", opts_.max_depth));
        if (depth >= frames_->size()) [[unlikely]]
            frames_->resize(std::max<std::size_t>(64, 2 * frames_->size()));
        (*frames_)[depth++] = frame{holder, node, std::size_t(at - base_), left, len, kind};
    }
    // A container's count field (one byte or four), checked against the input: each element
    // takes at least `per` bytes, and `extra` more follow (a list's tail).
    std::uint32_t count_field(const std::uint8_t*& p, bool one_byte, const std::uint8_t* at,
                              const char* what, unsigned per, unsigned extra) const {
        std::uint32_t n = length_field(p, one_byte);
        std::size_t left = std::min<std::size_t>(std::size_t(end_ - p), UINT32_MAX);
        if (std::uint64_t(n) * per + extra > left)
            fail(at, fmt::format("{} of {} {} in {} bytes", what, n,
                                 per == 2 ? "pairs" : "elements", end_ - p));
        return n;
    }

    // Makes room for `more` elements in the open list `f` (whose tail comes next): a payload
    // with geometrically more slots when needed, so that a chain of joined tails stays linear.
    // Returns the first new slot.
    term* grow_list(frame& f, const std::uint8_t* at, std::uint32_t more) {
        if (std::uint64_t(f.len) + more > UINT32_MAX) fail(at, "list of more than 2^32-1 elements");
        auto* old = static_cast<detail::list_node*>(f.node);
        std::uint32_t need = f.len + more;
        if (need > old->size) {
            auto cap = std::uint32_t(std::max<std::uint64_t>(
                need, std::min<std::uint64_t>(2ull * old->size, UINT32_MAX)));
            auto* n = make<detail::list_node>(detail::list_node::bytes(cap), cap);
            term* e = n->elems();
            std::memcpy(static_cast<void*>(e), old->elems(), std::size_t(f.len) * sizeof(term));
            init_slots(e + f.len, cap - f.len);
            if (!use_arena_) term_access::put_nil(&n->tail);
            // The old payload's elements were moved (bitwise) and its tail is [].
            if (!old->in_arena) ::operator delete(old);
            term_access::put_node(f.holder, n); // over the old payload's term
            f.node = n;
        }
        term* first = static_cast<detail::list_node*>(f.node)->elems() + f.len;
        f.len = need;
        return first;
    }

    // Whether a map's keys are in strictly increasing term order, with a shortcut for the
    // common keys, interned atoms: each name looked up once and compared in place.
    static bool keys_ascending(const std::pair<term, term>* e, std::size_t n) noexcept {
        std::string_view prev;
        bool prev_atom = false;
        for (std::size_t i = 0; i < n; ++i) {
            const term& k = e[i].first;
            if (term_access::tag(k) != term_tag::atom) {
                if (i > 0 && !(e[i - 1].first < k)) return false;
                prev_atom = false;
                continue;
            }
            std::uint32_t index = term_access::atom_index(k);
            atom a;
            std::memcpy(static_cast<void*>(&a), &index, sizeof a);
            std::string_view name = a.name();
            if (i > 0) {
                if (!prev_atom) {
                    if (!(e[i - 1].first < k)) return false;
                } else if (!text_less(prev, name)) {
                    return false;
                }
            }
            prev = name;
            prev_atom = true;
        }
        return true;
    }
    static bool text_less(std::string_view a, std::string_view b) noexcept {
        std::size_t n = std::min(a.size(), b.size());
        for (std::size_t i = 0; i < n; ++i)
            if (a[i] != b[i])
                return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
        return a.size() < b.size();
    }

    // Checks and completes a container whose children are all in.
    void complete(frame& f, const std::uint8_t* p) {
        switch (f.kind) {
        case open_kind::list:
        case open_kind::list_tail:
            static_cast<detail::list_node*>(f.node)->size = f.len;
            return;
        case open_kind::map: {
            auto* m = static_cast<detail::map_node*>(f.node);
            auto* e = m->entries();
            std::size_t n = m->size;
            if (!keys_ascending(e, n)) {
                // Maps above 32 keys come in Erlang's hash order.
                std::sort(e, e + n, [](const auto& a, const auto& b) { return a.first < b.first; });
                for (std::size_t k = 1; k < n; ++k)
                    if (e[k - 1].first == e[k].first) fail(f.at, "map with duplicate keys");
            }
            return;
        }
        case open_kind::fun: {
            auto* n = static_cast<detail::local_fun_node*>(f.node);
            std::uint32_t fun_size = be32(base_ + f.at + 1);
            std::size_t actual = std::size_t(p - base_) - (f.at + 1);
            if (actual != fun_size)
                fail(f.at,
                     fmt::format("fun size field says {} bytes, the fun has {}", fun_size, actual));
            if (!n->module.is_atom()) fail(f.at, "fun module must be an atom");
            if (!n->old_index.is_integer() || !n->old_uniq.is_integer())
                fail(f.at, "fun OldIndex and OldUniq must be integers");
            if (!n->pid.is_pid()) fail(f.at, "fun creator must be a pid");
            return;
        }
        case open_kind::tuple:
            return;
        }
    }

    // An atom of `len` bytes at p (in the input) into *slot.
    void atom_value(std::uint8_t t, const std::uint8_t* tag_at, const std::uint8_t* p,
                    std::size_t len, term* slot) {
        if (intern_ && len <= 32) {
            atom_key k;
            make_atom_key(p, len, end_, k);
            // Two ways: a name is in one of the two entries of its set.
            std::size_t i = atom_set(k);
            auto hit = [&k](const atom_entry& e) {
                return ((e.w[0] ^ k.w[0]) | (e.w[1] ^ k.w[1]) | (e.w[2] ^ k.w[2]) |
                        (e.w[3] ^ k.w[3]) | (e.len1 ^ (k.len + 1))) == 0;
            };
            if (hit(t_atom_cache[i])) [[likely]] {
                term_access::put_atom(slot, t_atom_cache[i].index);
                return;
            }
            if (hit(t_atom_cache[i ^ 1])) {
                term_access::put_atom(slot, t_atom_cache[i ^ 1].index);
                return;
            }
            if (is_ascii(k)) {
                // A new name goes first and pushes the previous first one to the second way.
                atom a(std::string_view(reinterpret_cast<const char*>(p), len));
                t_atom_cache[i ^ 1] = t_atom_cache[i];
                atom_entry& e = t_atom_cache[i];
                std::memcpy(e.w, k.w, sizeof e.w);
                e.len1 = k.len + 1;
                e.index = a.index();
                term_access::put_atom(slot, a.index());
                return;
            }
        }
        atom_checked(t, tag_at, p, len, slot);
    }

    // The general case: validated, converted from Latin-1, interned or kept as atom text.
    [[gnu::noinline]] void atom_checked(std::uint8_t t, const std::uint8_t* tag_at,
                                        const std::uint8_t* p, std::size_t len, term* slot) {
        std::span<const std::uint8_t> raw(p, len);
        std::string_view text(reinterpret_cast<const char*>(p), len);
        std::string latin1;
        if (t == ATOM_EXT || t == SMALL_ATOM_EXT) {
            if (len > 255) fail(tag_at, "atom longer than 255 characters");
            // Latin-1: every byte is a code point.
            if (!ascii_only(raw)) {
                for (auto c : raw)
                    detail::append_utf8(latin1, c);
                text = latin1;
            }
        } else if (ascii_only(raw)) {
            if (len > 255) fail(tag_at, "atom longer than 255 characters");
        } else {
            std::size_t chars = detail::utf8_length(text);
            if (chars == SIZE_MAX) fail(tag_at, "atom is not valid UTF-8");
            if (chars > 255) fail(tag_at, "atom longer than 255 characters");
        }
        if (intern_ && text.size() <= atom::max_length) {
            ::new (slot) term(detail::atom_term(text, true)); // through term.cpp's atom cache
            return;
        }
        auto* n = make<detail::atom_text_node>(detail::atom_text_node::bytes(text.size()),
                                               std::uint32_t(text.size()));
        if (!text.empty()) std::memcpy(detail::trailing<char>(n), text.data(), text.size());
        term_access::put_node(slot, n);
    }

    // Most atoms are ASCII: valid UTF-8 of len characters, checked eight bytes at a time.
    static bool ascii_only(std::span<const std::uint8_t> raw) noexcept {
        std::size_t i = 0;
        std::uint64_t any = 0;
        for (; i + 8 <= raw.size(); i += 8)
            any |= raw64(raw.data() + i);
        for (; i < raw.size(); ++i)
            any |= raw[i];
        return (any & high_bits) == 0;
    }

    // The atom that a pid, port, reference or export fun holds (its node, module or function
    // name), into *slot; `owner` is the offset of the holder's tag, where errors point.
    const std::uint8_t* field_atom(const std::uint8_t* p, const std::uint8_t* owner,
                                   const char* what, term* slot) {
        need(p, 1);
        std::uint8_t t = *p++;
        std::size_t len;
        if (t == SMALL_ATOM_UTF8_EXT || t == SMALL_ATOM_EXT) {
            need(p, 1);
            len = *p++;
        } else if (t == ATOM_UTF8_EXT || t == ATOM_EXT) {
            need(p, 2);
            len = be16(p);
            p += 2;
        } else {
            fail(owner, what);
        }
        need(p, len);
        atom_value(t, p - (t == SMALL_ATOM_UTF8_EXT || t == SMALL_ATOM_EXT ? 2 : 3), p, len, slot);
        return p + len;
    }

    // Pids, ports, references and export funs: a fixed shape of atoms and numbers, read at
    // once into their payload (nothing of theirs nests).
    const std::uint8_t* identifier(std::uint8_t t, const std::uint8_t* tag_at,
                                   const std::uint8_t* p, term* slot) {
        static constexpr const char* not_node = "node name is not an atom";
        switch (t) {
        case NEW_PID_EXT:
        case PID_EXT: {
            auto* n = make<detail::pid_node>(sizeof(detail::pid_node));
            term_access::put_node(slot, n);
            p = field_atom(p, tag_at, not_node, &n->node);
            need(p, t == NEW_PID_EXT ? 12 : 9);
            n->id = be32(p);
            n->serial = be32(p + 4);
            n->creation = t == NEW_PID_EXT ? be32(p + 8) : p[8];
            return p + (t == NEW_PID_EXT ? 12 : 9);
        }
        case NEW_PORT_EXT:
        case V4_PORT_EXT:
        case PORT_EXT: {
            auto* n = make<detail::port_node>(sizeof(detail::port_node));
            term_access::put_node(slot, n);
            p = field_atom(p, tag_at, not_node, &n->node);
            std::size_t id_size = t == V4_PORT_EXT ? 8 : 4, cr_size = t == PORT_EXT ? 1 : 4;
            need(p, id_size + cr_size);
            n->id = t == V4_PORT_EXT ? be64(p) : be32(p);
            p += id_size;
            n->creation = t == PORT_EXT ? p[0] : be32(p);
            return p + cr_size;
        }
        case REFERENCE_EXT:
        case NEWER_REFERENCE_EXT:
        case NEW_REFERENCE_EXT: {
            std::uint32_t len = 1;
            if (t != REFERENCE_EXT) {
                need(p, 2);
                len = be16(p);
                p += 2;
            }
            if (len < 1 || len > 5)
                fail(tag_at, fmt::format("reference of {} words (1..5 allowed)", len));
            auto* n = make<detail::ref_node>(sizeof(detail::ref_node));
            term_access::put_node(slot, n);
            p = field_atom(p, tag_at, not_node, &n->node);
            n->len = std::uint8_t(len);
            if (t == REFERENCE_EXT) {
                need(p, 5);
                n->words[0] = be32(p);
                n->creation = p[4];
                return p + 5;
            }
            std::size_t cr_size = t == NEWER_REFERENCE_EXT ? 4 : 1;
            need(p, cr_size + 4 * std::size_t(len));
            n->creation = cr_size == 4 ? be32(p) : p[0];
            p += cr_size;
            for (std::size_t i = 0; i < len; ++i, p += 4)
                n->words[i] = be32(p);
            return p;
        }
        default: { // EXPORT_EXT
            static constexpr const char* not_atoms = "export fun module and function must be atoms";
            auto* n = make<detail::export_node>(sizeof(detail::export_node));
            term_access::put_node(slot, n);
            p = field_atom(p, tag_at, not_atoms, &n->module);
            p = field_atom(p, tag_at, not_atoms, &n->function);
            need(p, 1);
            std::uint32_t arity = 256;
            if (*p == SMALL_INTEGER_EXT) {
                need(p + 1, 1);
                arity = p[1];
                p += 2;
            } else if (*p == INTEGER_EXT) {
                need(p + 1, 4);
                arity = be32(p + 1);
                p += 5;
            }
            if (arity > 255) fail(tag_at, "export fun arity must be 0..255");
            n->arity = std::uint8_t(arity);
            return p;
        }
        }
    }

    // The tags seldom seen: bignums, old floats, and the refused ones.
    [[gnu::noinline]] const std::uint8_t* rare_scalar(std::uint8_t t, const std::uint8_t* tag_at,
                                                      const std::uint8_t* p, term* slot) {
        switch (t) {
        case SMALL_BIG_EXT:
        case LARGE_BIG_EXT: {
            std::size_t n = length_field(p, t == SMALL_BIG_EXT);
            if (n > opts_.max_bignum_bytes)
                fail(tag_at, fmt::format("integer of {} bytes, above the limit of {}", n,
                                         opts_.max_bignum_bytes));
            need(p, 1);
            std::uint8_t sign = *p++;
            if (sign > 1) fail(tag_at + 1, "bad integer sign byte");
            need(p, n);
            const std::uint8_t* raw = p;
            p += n;
            std::size_t len = n; // without the zero digits on top
            while (len > 0 && raw[len - 1] == 0)
                --len;
            if (len <= 8) { // the int64 fast path, if it fits
                std::uint64_t m = 0;
                for (std::size_t i = len; i-- > 0;)
                    m = m << 8 | raw[i];
                if (sign == 0 && m <= std::uint64_t(INT64_MAX)) {
                    term_access::put_small(slot, std::int64_t(m));
                    return p;
                }
                if (sign == 1 && m <= std::uint64_t(INT64_MAX) + 1) {
                    term_access::put_small(slot, std::int64_t(0 - m));
                    return p;
                }
            }
            // The 32-bit limbs of the magnitude, built in the payload (the top one not 0).
            std::size_t limbs = (len + 3) / 4;
            auto* node =
                make<detail::big_node>(detail::big_node::bytes(limbs), std::uint32_t(limbs));
            auto* l = detail::trailing<std::uint32_t>(node);
            std::fill_n(l, limbs, 0u);
            for (std::size_t i = 0; i < len; ++i)
                l[i / 4] |= std::uint32_t(raw[i]) << (8 * (i % 4));
            node->small = sign;
            term_access::put_node(slot, node);
            return p;
        }
        case FLOAT_EXT: {
            need(p, 31);
            std::string_view s(reinterpret_cast<const char*>(p), 31);
            s = s.substr(0, s.find('\0'));
            while (!s.empty() && s.front() == ' ')
                s.remove_prefix(1);
            double d = 0;
            auto r = std::from_chars(s.data(), s.data() + s.size(), d);
            if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() ||
                !std::isfinite(d))
                fail(tag_at, "bad FLOAT_EXT text");
            term_access::put_float(slot, d);
            return p + 31;
        }
        case BIT_BINARY_EXT: {
            need(p, 5);
            std::size_t n = be32(p);
            std::uint8_t bits = p[4];
            p += 5;
            if (n == 0) {
                if (bits != 0) fail(tag_at, "empty bitstring with trailing bits");
                term_access::put_node(slot, bits_node(p, 0, 8));
                return p;
            }
            if (bits < 1 || bits > 8) fail(tag_at, "bitstring trailing bit count not in 1..8");
            need(p, n);
            term_access::put_node(slot, bits_node(p, n, bits));
            return p + n;
        }
        case ATOM_CACHE_REF:
            fail(tag_at, "atom cache reference (tag 82) without a distribution atom cache");
        case FUN_EXT:
            fail(tag_at, "FUN_EXT (tag 117) was removed from Erlang and is not accepted");
        case LOCAL_EXT:
            fail(tag_at, "LOCAL_EXT (tag 121) is local to one Erlang node");
        case COMPRESSED:
            fail(tag_at, "compressed term (tag 80) is only allowed right after 131");
        case version_magic:
            fail(tag_at, "unexpected version byte 131 inside a term");
        default:
            fail(tag_at, fmt::format("unknown tag {}", t));
        }
    }

    detail::bits_node* bits_node(const std::uint8_t* raw, std::size_t n, std::uint8_t tail_bits) {
        auto* b = make<detail::bits_node>(detail::bits_node::bytes(n), n);
        if (n) std::memcpy(b->data(), raw, n);
        b->small = tail_bits;
        if (tail_bits != 8) b->data()[n - 1] &= std::uint8_t(0xFF << (8 - tail_bits));
        return b;
    }

    term inflate_and_decode() {
        const std::uint8_t* at = p_++;
        need(p_, 4);
        std::uint32_t size = be32(p_);
        p_ += 4;
        if (size > opts_.max_inflated_size)
            fail(at, fmt::format("compressed term declares {} bytes, above the limit of {}", size,
                                 opts_.max_inflated_size));
        if (size == 0) fail(at, "compressed term declares 0 bytes");
        std::vector<std::uint8_t> buf(size);
        z_stream z{};
        if (inflateInit(&z) != Z_OK) fail(at, "zlib initialisation failed");
        z.next_in = const_cast<Bytef*>(p_);
        z.avail_in = uInt(std::min<std::size_t>(std::size_t(end_ - p_), UINT32_MAX));
        z.next_out = buf.data();
        z.avail_out = uInt(size);
        int rc = inflate(&z, Z_FINISH);
        std::size_t consumed = z.total_in, produced = z.total_out;
        inflateEnd(&z);
        if (rc != Z_STREAM_END) {
            fail(p_, rc == Z_BUF_ERROR && produced == size
                         ? std::string("compressed data inflates beyond its declared size")
                         : fmt::format("bad zlib data ({})", z.msg ? z.msg : "truncated"));
        }
        if (produced != size)
            fail(at, fmt::format("compressed term declares {} bytes but inflates to {}", size,
                                 produced));
        p_ += consumed;
        decoder inner(buf, opts_, 0, true);
        term t = inner.run(false);
        if (inner.pos() != buf.size())
            inner.fail(inner.pos(), "trailing bytes after the term inside the compressed data");
        return t;
    }

    const std::uint8_t* base_;
    const std::uint8_t* p_; // the next byte, outside run()
    const std::uint8_t* end_;
    const decode_options& opts_;
    bool inflated_;
    bool intern_;
    bool use_arena_;
    // Declared before the result (in run): destroyed after it, so that a term dropped on an
    // error path still finds its arena.
    detail::arena_builder arena_;
    std::vector<frame>* frames_;
    std::vector<frame> own_frames_;
};

} // namespace

} // namespace etf

std::size_t detail::set_decode_arena_limit(std::size_t max_input) noexcept {
    return etf::arena_max_input.exchange(max_input);
}

namespace etf {

term decode(std::span<const std::uint8_t> bytes, const decode_options& opts) {
    if (bytes.empty()) throw etf_error(0, "empty input");
    if (bytes[0] != version_magic)
        throw etf_error(0, fmt::format("version byte is {}, not 131", bytes[0]));
    decoder d(bytes, opts, 1, false);
    term t = d.run(true);
    if (d.pos() != bytes.size())
        throw etf_error(d.pos(),
                        fmt::format("{} trailing bytes after the term", bytes.size() - d.pos()));
    return t;
}

term decode_body(std::span<const std::uint8_t> bytes, std::size_t& offset,
                 const decode_options& opts) {
    if (offset > bytes.size()) throw etf_error(offset, "offset beyond the input");
    decoder d(bytes, opts, offset, false);
    term t = d.run(false);
    offset = d.pos();
    return t;
}

} // namespace etf
} // namespace erl
