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
// Decoding: iterative, with an explicit stack of unfinished containers.

namespace {

struct frame {
    // Tuples, lists, maps, pids, ports and references: the payload is made when the container
    // opens (its slots []) and the children are decoded straight into it; `slot` is the next
    // child's place. Export and local funs gather their children on the value stack instead
    // (slot and node null, children from `base`).
    term* slot;
    detail::term_node* node;
    std::size_t base;
    std::size_t at;          // offset of the tag, for errors (NEW_FUN_EXT: its header follows)
    std::uint32_t remaining; // children still to come
    std::uint32_t len;       // list: elements announced so far; reference: words
    std::uint8_t tag;
};

// The decoder's two stacks, kept per thread between decodes so that a decode allocates only
// the term itself. A nested decoder (the term inside a compressed one) finds them taken and
// uses its own. Stacks that grew large are given back rather than kept.
struct decode_stacks {
    std::vector<frame> frames;
    std::vector<term> values;
    bool busy = false;
};
thread_local decode_stacks t_stacks;

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
        : in_(in), opts_(o), pos_(pos), inflated_(inflated),
          use_arena_(in.size() - pos <= arena_max_input.load(std::memory_order_relaxed)),
          arena_(use_arena_ ? first_chunk_size(in.size() - pos) : 0) {
        intern_ = atom::table_size() < opts_.atom_table_limit;
        if (!t_stacks.busy) {
            t_stacks.busy = true;
            borrowed_ = true;
            frames_.swap(t_stacks.frames);
            values_.swap(t_stacks.values);
        }
    }
    ~decoder() {
        // After an error: the payloads being filled (each holds its children so far, the rest
        // of its slots being []) and the children gathered on the stack are released.
        for (auto& f : frames_)
            if (f.node) term owner = term_access::adopt(f.node);
        if (!borrowed_) return;
        values_.clear();
        frames_.clear();
        if (values_.capacity() <= 4096 && frames_.capacity() <= 1024) {
            frames_.swap(t_stacks.frames);
            values_.swap(t_stacks.values);
        }
        t_stacks.busy = false;
    }
    decoder(const decoder&) = delete;
    decoder& operator=(const decoder&) = delete;

    term run(bool top_level) {
        for (;;) {
            std::size_t at = pos_;
            std::uint8_t t = u8();
            if (t == COMPRESSED) {
                if (!top_level || !frames_.empty() || inflated_)
                    fail(at, "compressed term (tag 80) is only allowed right after 131");
                return inflate_and_decode(at);
            }
            top_level = false;
            scalar_or_open(t, at);
            if (done_) return finish(std::move(result_));
            // The tail of a list that is itself a list ([a | [b, c]] sent as a list whose tail
            // is a list): its elements join the open list, which stays flat and one payload.
            while (!frames_.empty() && frames_.back().tag == LIST_EXT &&
                   frames_.back().remaining == 1 && pos_ < in_.size() &&
                   (in_[pos_] == LIST_EXT || in_[pos_] == STRING_EXT)) {
                if (join_tail(frames_.back())) break;
            }
            if (done_) return finish(std::move(result_));
        }
    }

    std::size_t pos() const noexcept { return pos_; }

  private:
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

    // Makes room for `more` elements in the open list `f` (whose tail comes next): a payload
    // with geometrically more slots when needed, so that a chain of joined tails stays linear.
    void grow_list(frame& f, std::size_t at, std::uint32_t more) {
        if (std::uint64_t(f.len) + more > UINT32_MAX) fail(at, "list of more than 2^32-1 elements");
        auto* old = static_cast<detail::list_node*>(f.node);
        std::uint32_t need = f.len + more;
        if (need > old->size) {
            auto cap = std::uint32_t(std::max<std::uint64_t>(
                need, std::min<std::uint64_t>(2ull * old->size, UINT32_MAX)));
            auto* n = make<detail::list_node>(detail::list_node::bytes(cap), cap);
            term* e = n->elems();
            std::memcpy(static_cast<void*>(e), old->elems(), std::size_t(f.len) * sizeof(term));
            std::uninitialized_default_construct_n(e + f.len, cap - f.len);
            // The old payload's elements were moved (bitwise) and its tail is [].
            if (!old->in_arena) ::operator delete(old);
            f.node = n;
        }
        f.slot = static_cast<detail::list_node*>(f.node)->elems() + f.len;
        f.len = need;
    }

    // Joins a LIST_EXT or STRING_EXT tail to the open list `f`; true when that completed it.
    bool join_tail(frame& f) {
        std::size_t at = pos_;
        std::uint8_t t = in_[pos_++];
        if (t == LIST_EXT) {
            std::uint32_t n = u32();
            if (std::uint64_t(n) + 1 > left())
                fail(at, fmt::format("list of {} elements in {} bytes", n, left()));
            grow_list(f, at, n);
            f.remaining = n + 1;
            if (n == 0) f.slot = &static_cast<detail::list_node*>(f.node)->tail;
            return false;
        }
        std::uint32_t n = u16();
        auto raw = take(n);
        grow_list(f, at, n);
        for (auto c : raw)
            ::new (f.slot++) term(std::int64_t(c));
        f.slot = &static_cast<detail::list_node*>(f.node)->tail;
        emit(term()); // the string's tail, [], completes the list
        return true;
    }

    term atom_node(std::string_view name) {
        if (intern_ && name.size() <= atom::max_length) return detail::atom_term(name, true);
        auto* n = make<detail::atom_text_node>(detail::atom_text_node::bytes(name.size()),
                                               std::uint32_t(name.size()));
        if (!name.empty()) std::memcpy(detail::trailing<char>(n), name.data(), name.size());
        return term_access::adopt(n);
    }

    term bits_node(std::span<const std::uint8_t> raw, std::uint8_t tail_bits) {
        auto* n = make<detail::bits_node>(detail::bits_node::bytes(raw.size()), raw.size());
        if (!raw.empty()) std::memcpy(n->data(), raw.data(), raw.size());
        n->small = tail_bits;
        if (tail_bits != 8) n->data()[raw.size() - 1] &= std::uint8_t(0xFF << (8 - tail_bits));
        return term_access::adopt(n);
    }
    [[noreturn, gnu::cold, gnu::noinline]] void fail(std::size_t at, std::string why) const {
        if (inflated_) why += " (offset in the inflated data)";
        throw etf_error(at, std::move(why));
    }
    void need(std::size_t n) {
        if (in_.size() - pos_ < n) [[unlikely]]
            truncated(n);
    }
    [[noreturn, gnu::cold, gnu::noinline]] void truncated(std::size_t n) const {
        fail(pos_, fmt::format("truncated: {} more bytes needed, {} left", n, in_.size() - pos_));
    }
    std::size_t left() const noexcept { return in_.size() - pos_; }
    std::uint8_t u8() {
        need(1);
        return in_[pos_++];
    }
    std::uint32_t u16() {
        need(2);
        std::uint32_t v = (std::uint32_t(in_[pos_]) << 8) | in_[pos_ + 1];
        pos_ += 2;
        return v;
    }
    std::uint32_t u32() {
        need(4);
        std::uint32_t v;
        std::memcpy(&v, in_.data() + pos_, 4);
        pos_ += 4;
        if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
        return v;
    }
    std::uint64_t u64() {
        need(8);
        std::uint64_t v;
        std::memcpy(&v, in_.data() + pos_, 8);
        pos_ += 8;
        if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
        return v;
    }
    std::span<const std::uint8_t> take(std::size_t n) {
        need(n);
        auto s = in_.subspan(pos_, n);
        pos_ += n;
        return s;
    }

    term inflate_and_decode(std::size_t at) {
        std::uint32_t size = u32();
        if (size > opts_.max_inflated_size)
            fail(at, fmt::format("compressed term declares {} bytes, above the limit of {}", size,
                                 opts_.max_inflated_size));
        if (size == 0) fail(at, "compressed term declares 0 bytes");
        std::vector<std::uint8_t> buf(size);
        z_stream z{};
        if (inflateInit(&z) != Z_OK) fail(at, "zlib initialisation failed");
        z.next_in = const_cast<Bytef*>(in_.data() + pos_);
        z.avail_in = uInt(std::min<std::size_t>(left(), UINT32_MAX));
        z.next_out = buf.data();
        z.avail_out = uInt(size);
        int rc = inflate(&z, Z_FINISH);
        std::size_t consumed = z.total_in, produced = z.total_out;
        inflateEnd(&z);
        if (rc != Z_STREAM_END) {
            fail(pos_, rc == Z_BUF_ERROR && produced == size
                           ? std::string("compressed data inflates beyond its declared size")
                           : fmt::format("bad zlib data ({})", z.msg ? z.msg : "truncated"));
        }
        if (produced != size)
            fail(at, fmt::format("compressed term declares {} bytes but inflates to {}", size,
                                 produced));
        pos_ += consumed;
        decoder inner(buf, opts_, 0, true);
        term t = inner.run(false);
        if (inner.pos() != buf.size())
            inner.fail(inner.pos(), "trailing bytes after the term inside the compressed data");
        return t;
    }

    void check_depth(std::size_t at) const {
        if (frames_.size() >= opts_.max_depth)
            fail(at, fmt::format("nesting deeper than {}", opts_.max_depth));
    }
    // A container whose children go straight into its payload, starting at `slot`.
    void open(std::uint8_t t, std::size_t at, detail::term_node* node, term* slot,
              std::uint32_t children, std::uint32_t len = 0) {
        frames_.push_back(frame{slot, node, 0, at, children, len, t});
    }
    // A container whose children are gathered on the value stack.
    void open_stacked(std::uint8_t t, std::size_t at, std::uint32_t children) {
        check_depth(at);
        frames_.push_back(frame{nullptr, nullptr, values_.size(), at, children, 0, t});
    }

    // Most atoms are ASCII: valid UTF-8 of len characters, checked eight bytes at a time.
    static bool ascii_only(std::span<const std::uint8_t> raw) noexcept {
        std::size_t i = 0;
        std::uint64_t any = 0;
        for (; i + 8 <= raw.size(); i += 8) {
            std::uint64_t w;
            std::memcpy(&w, raw.data() + i, 8);
            any |= w;
        }
        for (; i < raw.size(); ++i)
            any |= raw[i];
        return (any & 0x8080808080808080ull) == 0;
    }

    term atom_from(std::uint8_t t, std::size_t at, std::size_t len) {
        auto raw = take(len);
        std::string_view text(reinterpret_cast<const char*>(raw.data()), raw.size());
        if (len <= 16) { // the common case: short and ASCII (valid in every atom encoding)
            std::uint64_t w1, w2;
            detail::atom_words(text, w1, w2);
            if (((w1 | w2) & 0x8080808080808080ull) == 0) return atom_node(text);
        }
        if (t == ATOM_EXT || t == SMALL_ATOM_EXT) {
            if (len > 255) fail(at, "atom longer than 255 characters");
            // Latin-1: every byte is a code point.
            if (!ascii_only(raw)) {
                std::string utf8;
                for (auto c : raw)
                    detail::append_utf8(utf8, c);
                return atom_node(utf8);
            }
        } else if (ascii_only(raw)) {
            if (len > 255) fail(at, "atom longer than 255 characters");
        } else {
            std::size_t chars = detail::utf8_length(text);
            if (chars == SIZE_MAX) fail(at, "atom is not valid UTF-8");
            if (chars > 255) fail(at, "atom longer than 255 characters");
        }
        return atom_node(text);
    }

    void scalar_or_open(std::uint8_t t, std::size_t at) {
        switch (t) {
        case SMALL_INTEGER_EXT:
            emit(term(std::int64_t(u8())));
            return;
        case INTEGER_EXT:
            emit(term(std::int64_t(std::int32_t(u32()))));
            return;
        case SMALL_BIG_EXT:
        case LARGE_BIG_EXT: {
            std::size_t n = t == SMALL_BIG_EXT ? u8() : u32();
            if (n > opts_.max_bignum_bytes)
                fail(at, fmt::format("integer of {} bytes, above the limit of {}", n,
                                     opts_.max_bignum_bytes));
            std::uint8_t sign = u8();
            if (sign > 1) fail(at + 1, "bad integer sign byte");
            auto raw = take(n);
            std::size_t len = n; // without the zero digits on top
            while (len > 0 && raw[len - 1] == 0)
                --len;
            if (len <= 8) { // the int64 fast path, if it fits
                std::uint64_t m = 0;
                for (std::size_t i = len; i-- > 0;)
                    m = m << 8 | raw[i];
                if (sign == 0 && m <= std::uint64_t(INT64_MAX)) {
                    emit(term(std::int64_t(m)));
                    return;
                }
                if (sign == 1 && m <= std::uint64_t(INT64_MAX) + 1) {
                    emit(term(std::int64_t(0 - m)));
                    return;
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
            emit(term_access::adopt(node));
            return;
        }
        case NEW_FLOAT_EXT: {
            std::uint64_t bits = u64();
            double d;
            std::memcpy(&d, &bits, sizeof d);
            if (!std::isfinite(d)) fail(at, "float is not finite");
            emit(term(d));
            return;
        }
        case FLOAT_EXT: {
            auto raw = take(31);
            std::string_view s(reinterpret_cast<const char*>(raw.data()), raw.size());
            s = s.substr(0, s.find('\0'));
            while (!s.empty() && s.front() == ' ')
                s.remove_prefix(1);
            double d = 0;
            auto r = std::from_chars(s.data(), s.data() + s.size(), d);
            if (s.empty() || r.ec != std::errc() || r.ptr != s.data() + s.size() ||
                !std::isfinite(d))
                fail(at, "bad FLOAT_EXT text");
            emit(term(d));
            return;
        }
        case ATOM_EXT:
        case ATOM_UTF8_EXT:
            emit(atom_from(t, at, u16()));
            return;
        case SMALL_ATOM_EXT:
        case SMALL_ATOM_UTF8_EXT:
            emit(atom_from(t, at, u8()));
            return;
        case ATOM_CACHE_REF:
            fail(at, "atom cache reference (tag 82) without a distribution atom cache");
        case NIL_EXT:
            emit(term());
            return;
        case STRING_EXT: {
            std::uint32_t n = u16();
            auto raw = take(n);
            if (n == 0) {
                emit(term());
                return;
            }
            auto* node = make<detail::list_node>(detail::list_node::bytes(n), n);
            term* e = node->elems();
            for (std::uint32_t i = 0; i < n; ++i)
                ::new (e + i) term(std::int64_t(raw[i]));
            emit(term_access::adopt(node));
            return;
        }
        case BINARY_EXT: {
            std::uint32_t n = u32();
            emit(bits_node(take(n), 8));
            return;
        }
        case BIT_BINARY_EXT: {
            std::uint32_t n = u32();
            std::uint8_t bits = u8();
            if (n == 0) {
                if (bits != 0) fail(at, "empty bitstring with trailing bits");
                emit(bits_node({}, 8));
                return;
            }
            if (bits < 1 || bits > 8) fail(at, "bitstring trailing bit count not in 1..8");
            emit(bits_node(take(n), bits));
            return;
        }
        case SMALL_TUPLE_EXT:
        case LARGE_TUPLE_EXT: {
            std::uint32_t n = t == SMALL_TUPLE_EXT ? u8() : u32();
            if (n > left()) fail(at, fmt::format("tuple of {} elements in {} bytes", n, left()));
            if (n > 0) check_depth(at);
            auto* node = make<detail::tuple_node>(detail::tuple_node::bytes(n), n);
            if (n == 0) {
                emit(term_access::adopt(node));
                return;
            }
            std::uninitialized_default_construct_n(node->elems(), n);
            open(t, at, node, node->elems(), n);
            return;
        }
        case LIST_EXT: {
            std::uint32_t n = u32();
            if (std::uint64_t(n) + 1 > left())
                fail(at, fmt::format("list of {} elements in {} bytes", n, left()));
            if (n == 0) return; // [ | Tail] is Tail: the next term stands for the list
            check_depth(at);
            auto* node = make<detail::list_node>(detail::list_node::bytes(n), n);
            std::uninitialized_default_construct_n(node->elems(), n);
            open(t, at, node, node->elems(), n + 1, n);
            return;
        }
        case MAP_EXT: {
            std::uint32_t n = u32();
            if (std::uint64_t(n) * 2 > left())
                fail(at, fmt::format("map of {} pairs in {} bytes", n, left()));
            if (n > 0) check_depth(at);
            auto* node = make<detail::map_node>(detail::map_node::bytes(n), n);
            if (n == 0) {
                emit(term_access::adopt(node));
                return;
            }
            std::uninitialized_default_construct_n(node->entries(), n);
            // Keys and values alternate: the entries seen as a sequence of terms.
            open(t, at, node, reinterpret_cast<term*>(node->entries()), n * 2);
            return;
        }
        case NEW_PID_EXT:
        case PID_EXT: {
            check_depth(at);
            auto* node = make<detail::pid_node>(sizeof(detail::pid_node));
            open(t, at, node, &node->node, 1);
            return;
        }
        case NEW_PORT_EXT:
        case V4_PORT_EXT:
        case PORT_EXT: {
            check_depth(at);
            auto* node = make<detail::port_node>(sizeof(detail::port_node));
            open(t, at, node, &node->node, 1);
            return;
        }
        case REFERENCE_EXT:
        case NEWER_REFERENCE_EXT:
        case NEW_REFERENCE_EXT: {
            std::uint32_t n = t == REFERENCE_EXT ? 1 : u16();
            if (n < 1 || n > 5) fail(at, fmt::format("reference of {} words (1..5 allowed)", n));
            check_depth(at);
            auto* node = make<detail::ref_node>(sizeof(detail::ref_node));
            open(t, at, node, &node->node, 1, n);
            return;
        }
        case EXPORT_EXT:
            open_stacked(t, at, 3);
            return;
        case NEW_FUN_EXT: {
            // Size, Arity, Uniq (16), Index, NumFree: read again from the input when complete.
            std::uint32_t size = u32();
            u8();
            take(16);
            u32();
            std::uint32_t num_free = u32();
            if (size < 29 || size - 29 > left())
                fail(at, "fun size field disagrees with the input");
            if (std::uint64_t(num_free) + 4 > left())
                fail(at, fmt::format("fun with {} free variables in {} bytes", num_free, left()));
            open_stacked(t, at, 4 + num_free);
            return;
        }
        case FUN_EXT:
            fail(at, "FUN_EXT (tag 117) was removed from Erlang and is not accepted");
        case LOCAL_EXT:
            fail(at, "LOCAL_EXT (tag 121) is local to one Erlang node");
        case COMPRESSED:
            fail(at, "compressed term (tag 80) is only allowed right after 131");
        case version_magic:
            fail(at, "unexpected version byte 131 inside a term");
        default:
            fail(at, fmt::format("unknown tag {}", t));
        }
    }

    // A finished value: becomes the result or the next child of the innermost container;
    // containers whose last child arrived are completed in turn.
    // The common case inline: a child that is not its container's last nor a list's tail.
    [[gnu::always_inline]] void emit(term&& v) {
        if (!frames_.empty()) {
            frame& f = frames_.back();
            if (f.slot && f.remaining > 2) {
                ::new (f.slot++) term(std::move(v)); // over a [] slot: nothing to release
                --f.remaining;
                return;
            }
        }
        emit_rest(std::move(v));
    }

    [[gnu::noinline]] void emit_rest(term&& v) {
        for (;;) {
            if (frames_.empty()) {
                result_ = std::move(v);
                done_ = true;
                return;
            }
            frame& f = frames_.back();
            if (f.slot) {
                ::new (f.slot++) term(std::move(v)); // over a [] slot: nothing to release
                if (--f.remaining > 1) return;
                if (f.remaining == 1) {
                    if (f.tag == LIST_EXT) f.slot = &static_cast<detail::list_node*>(f.node)->tail;
                    return;
                }
                v = complete_in_place(f);
            } else {
                values_.push_back(std::move(v));
                if (--f.remaining > 0) return;
                v = complete(f);
                values_.resize(f.base);
            }
            frames_.pop_back();
        }
    }

    // Term order of map keys, with a shortcut for the common keys: interned atoms.
    static bool key_less(const term& a, const term& b) noexcept {
        if (term_access::tag(a) == term_tag::atom && term_access::tag(b) == term_tag::atom) {
            auto x = term_access::atom_index(a), y = term_access::atom_index(b);
            return x != y && a.as_atom().name() < b.as_atom().name();
        }
        return a < b;
    }

    // Completes a container built in place (its frame still open, so that a failure here
    // releases the payload).
    term complete_in_place(frame& f) {
        switch (f.tag) {
        case LIST_EXT:
            static_cast<detail::list_node*>(f.node)->size = f.len;
            break;
        case MAP_EXT: {
            auto* m = static_cast<detail::map_node*>(f.node);
            auto* e = m->entries();
            std::size_t n = m->size;
            std::size_t i = 1;
            while (i < n && key_less(e[i - 1].first, e[i].first))
                ++i;
            if (i < n) {
                // Maps above 32 keys come in Erlang's hash order.
                std::sort(e, e + n, [](const auto& a, const auto& b) { return a.first < b.first; });
                for (std::size_t k = 1; k < n; ++k)
                    if (e[k - 1].first == e[k].first) fail(f.at, "map with duplicate keys");
            }
            break;
        }
        case NEW_PID_EXT:
        case PID_EXT: {
            auto* n = static_cast<detail::pid_node*>(f.node);
            if (!n->node.is_atom()) fail(f.at, "node name is not an atom");
            n->id = u32();
            n->serial = u32();
            n->creation = f.tag == NEW_PID_EXT ? u32() : u8();
            break;
        }
        case NEW_PORT_EXT:
        case V4_PORT_EXT:
        case PORT_EXT: {
            auto* n = static_cast<detail::port_node*>(f.node);
            if (!n->node.is_atom()) fail(f.at, "node name is not an atom");
            n->id = f.tag == V4_PORT_EXT ? u64() : u32();
            n->creation = f.tag == PORT_EXT ? u8() : u32();
            break;
        }
        case NEWER_REFERENCE_EXT:
        case NEW_REFERENCE_EXT:
        case REFERENCE_EXT: {
            auto* n = static_cast<detail::ref_node*>(f.node);
            if (!n->node.is_atom()) fail(f.at, "node name is not an atom");
            n->len = std::uint8_t(f.len);
            if (f.tag == REFERENCE_EXT) {
                n->words[0] = u32();
                n->creation = u8();
            } else {
                n->creation = f.tag == NEWER_REFERENCE_EXT ? u32() : u8();
                for (std::size_t i = 0; i < f.len; ++i)
                    n->words[i] = u32();
            }
            break;
        }
        default: // tuples
            break;
        }
        return term_access::adopt(std::exchange(f.node, nullptr));
    }

    // Builds a finished export or local fun from its children at the top of the value stack.
    term complete(const frame& f) {
        auto first = values_.begin() + std::ptrdiff_t(f.base);
        auto count = std::size_t(values_.end() - first);
        switch (f.tag) {
        case EXPORT_EXT: {
            if (!first[0].is_atom() || !first[1].is_atom())
                fail(f.at, "export fun module and function must be atoms");
            if (!first[2].is_small_int() || first[2].as_int64() < 0 || first[2].as_int64() > 255)
                fail(f.at, "export fun arity must be 0..255");
            auto* n = make<detail::export_node>(sizeof(detail::export_node));
            n->module = std::move(first[0]);
            n->function = std::move(first[1]);
            n->arity = std::uint8_t(first[2].as_int64());
            return term_access::adopt(n);
        }
        case NEW_FUN_EXT: {
            // The header after the tag: Size, Arity, Uniq, Index, NumFree (checked at open).
            const std::uint8_t* h = in_.data() + f.at + 1;
            auto be32 = [](const std::uint8_t* b) {
                return std::uint32_t(b[0]) << 24 | std::uint32_t(b[1]) << 16 |
                       std::uint32_t(b[2]) << 8 | b[3];
            };
            std::uint32_t fun_size = be32(h);
            if (pos_ - (f.at + 1) != fun_size)
                fail(f.at, fmt::format("fun size field says {} bytes, the fun has {}", fun_size,
                                       pos_ - (f.at + 1)));
            if (!first[0].is_atom()) fail(f.at, "fun module must be an atom");
            if (!first[1].is_integer() || !first[2].is_integer())
                fail(f.at, "fun OldIndex and OldUniq must be integers");
            if (!first[3].is_pid()) fail(f.at, "fun creator must be a pid");
            std::size_t num_free = count - 4;
            auto* n = make<detail::local_fun_node>(detail::local_fun_node::bytes(num_free),
                                                   std::uint32_t(num_free));
            n->arity = h[4];
            std::memcpy(n->uniq.data(), h + 5, 16);
            n->index = be32(h + 21);
            n->module = std::move(first[0]);
            n->old_index = std::move(first[1]);
            n->old_uniq = std::move(first[2]);
            n->pid = std::move(first[3]);
            std::uninitialized_move(first + 4, values_.end(), n->free());
            return term_access::adopt(n);
        }
        }
        fail(f.at, "internal: unknown container");
    }

    std::span<const std::uint8_t> in_;
    const decode_options& opts_;
    std::size_t pos_;
    bool inflated_;
    bool intern_;
    bool use_arena_;
    // Declared before the stacks and the result: destroyed after them, so that terms dropped
    // on an error path still find their arena.
    detail::arena_builder arena_;
    std::vector<frame> frames_;
    std::vector<term> values_;
    term result_;
    bool done_ = false;
    bool borrowed_ = false;
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
