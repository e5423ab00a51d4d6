#include <erl/term.hpp>

#include <erl/detail/term_util.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <new>

namespace erl {

using detail::term_access;
using detail::term_tag;

std::string_view to_string(term_kind k) noexcept {
    switch (k) {
    case term_kind::integer:
        return "integer";
    case term_kind::float_:
        return "float";
    case term_kind::atom:
        return "atom";
    case term_kind::reference:
        return "reference";
    case term_kind::fun:
        return "fun";
    case term_kind::port:
        return "port";
    case term_kind::pid:
        return "pid";
    case term_kind::tuple:
        return "tuple";
    case term_kind::map:
        return "map";
    case term_kind::nil:
        return "nil";
    case term_kind::list:
        return "list";
    case term_kind::bitstring:
        return "bitstring";
    }
    return "?";
}

namespace detail {

std::size_t utf8_length(std::string_view s) noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < s.size(); ++n) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t len;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return SIZE_MAX;
        }
        if (i + len > s.size()) return SIZE_MAX;
        for (std::size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return SIZE_MAX;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Reject overlong forms, surrogates and values beyond Unicode, as Erlang does.
        static constexpr std::uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return SIZE_MAX;
        i += len;
    }
    return n;
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(char(cp));
    } else if (cp < 0x800) {
        out.push_back(char(0xC0 | (cp >> 6)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(char(0xE0 | (cp >> 12)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(char(0xF0 | (cp >> 18)));
        out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    }
}

term atom_term(std::string_view name, bool intern) {
    if (intern && name.size() <= atom::max_length) {
        // Decoding meets the same few atoms over and over; a per-thread direct-mapped cache
        // spares the atom table's lock and hash lookup. An entry points at the table's own
        // copy of the name, which lives as long as the program (atoms are never removed, so
        // entries cannot go stale).
        struct entry {
            std::uint64_t w1 = 0, w2 = 0;
            const char* text = nullptr;
            std::uint32_t size = 0;
            atom a;
        };
        thread_local std::array<entry, 1024> cache;
        // Names up to 16 bytes are identified by their size and two words (atom_words), which
        // also make the hash; longer ones are compared in full.
        std::uint64_t w1, w2;
        atom_words(name, w1, w2);
        std::uint64_t h = (w1 ^ (w2 * 0x9E3779B97F4A7C15ull) ^ name.size()) * 0xBF58476D1CE4E5B9ull;
        // Two ways: the entry at the hashed index or its neighbour; a new atom goes first and
        // pushes the previous first one to the neighbour.
        std::size_t idx = (h >> 40) & 1023;
        auto hit = [&](const entry& e) {
            return e.size == name.size() && e.w1 == w1 && e.w2 == w2 && e.text &&
                   (name.size() <= 16 || std::memcmp(e.text, name.data(), name.size()) == 0);
        };
        if (hit(cache[idx])) return term(cache[idx].a);
        if (hit(cache[idx ^ 1])) return term(cache[idx ^ 1].a);
        cache[idx ^ 1] = cache[idx];
        entry& e = cache[idx];
        atom a(name);
        std::string_view stored = a.name();
        e.text = stored.data();
        e.size = std::uint32_t(stored.size());
        e.w1 = w1;
        e.w2 = w2;
        e.a = a;
        return term(a);
    }
    auto* n =
        heap_make<atom_text_node>(atom_text_node::bytes(name.size()), std::uint32_t(name.size()));
    if (!name.empty()) std::memcpy(trailing<char>(n), name.data(), name.size());
    return term_access::adopt(n);
}

namespace {

// Freed first chunks of 512 B to 16 KiB, one per size per thread, for the next arenas: most
// decoded messages die on the thread that decoded them, and a decode then costs no malloc nor
// free. At most 31.5 KiB per thread; given back when the thread ends.
constexpr std::size_t min_chunk_shift = 9, kept_chunk_sizes = 6;
struct chunk_cache {
    void* chunks[kept_chunk_sizes]; // chunks[k]: 512 << k bytes, or null
    bool armed;                     // the reaper below is set up for this thread
    bool closed;                    // the thread is ending: keep nothing more
};
thread_local chunk_cache t_chunks; // zero-initialised, no destructor: usable to the thread's end
struct chunk_cache_reaper {
    chunk_cache_reaper() = default;
    chunk_cache_reaper(const chunk_cache_reaper&) = delete;
    chunk_cache_reaper& operator=(const chunk_cache_reaper&) = delete;
    ~chunk_cache_reaper() {
        t_chunks.closed = true;
        for (void*& c : t_chunks.chunks)
            ::operator delete(std::exchange(c, nullptr));
    }
};
thread_local chunk_cache_reaper t_reaper;

// The cache index of a chunk of `size` bytes, or kept_chunk_sizes when such chunks are not kept.
std::size_t chunk_index(std::size_t size) noexcept {
    if ((size & (size - 1)) != 0 || size < (std::size_t(1) << min_chunk_shift))
        return kept_chunk_sizes;
    return std::min<std::size_t>(std::size_t(std::countr_zero(size)) - min_chunk_shift,
                                 kept_chunk_sizes);
}

void* take_chunk(std::size_t size) {
    std::size_t k = chunk_index(size);
    if (k < kept_chunk_sizes && t_chunks.chunks[k])
        return std::exchange(t_chunks.chunks[k], nullptr);
    return ::operator new(size);
}

void drop_chunk(void* c, std::size_t size) noexcept {
    std::size_t k = chunk_index(size);
    if (k < kept_chunk_sizes && !t_chunks.chunks[k] && !t_chunks.closed) {
        if (!t_chunks.armed) {
            [[maybe_unused]] auto* r = &t_reaper; // registers its destructor for this thread
            t_chunks.armed = true;
        }
        t_chunks.chunks[k] = c;
        return;
    }
    ::operator delete(c);
}

} // namespace

std::size_t arena_chunk_size(std::size_t bytes) noexcept {
    if (bytes > (std::size_t(64) << 10)) return bytes;
    return std::bit_ceil(std::max<std::size_t>(bytes, std::size_t(1) << min_chunk_shift));
}

void free_arena(arena* a) noexcept {
    for (arena_chunk* c = a->next; c;) {
        arena_chunk* next = c->next;
        ::operator delete(c);
        c = next;
    }
    drop_chunk(a, a->size);
}

void arena_builder::grow(std::size_t bytes) {
    // Chunks stay below 4 GiB: payloads record their offset in 32 bits (the decoder only uses
    // arenas for inputs far smaller than that).
    if (!arena_) {
        std::size_t size = arena_chunk_size(std::max(first_, bytes + sizeof(arena)));
        if (size > UINT32_MAX) throw std::bad_alloc();
        char* mem = static_cast<char*>(take_chunk(size));
        arena_ = ::new (mem) arena;
        arena_->owner = arena_;
        arena_->next = nullptr;
        arena_->size = size;
        // While decoding, the count is far from zero: a term dropped on an error path or a
        // temporary copy can never free the arena under the decoder. release() sets it to 1.
        arena_->refs.store(std::size_t(1) << 40, std::memory_order_relaxed);
        chunk_ = mem;
        p_ = mem + sizeof(arena);
        end_ = mem + size;
        last_size_ = size;
        return;
    }
    std::size_t size = std::max(bytes + sizeof(arena_chunk), last_size_ * 2);
    if (size > UINT32_MAX) throw std::bad_alloc();
    char* mem = static_cast<char*>(::operator new(size));
    arena_->next = ::new (mem) arena_chunk{arena_, arena_->next};
    chunk_ = mem;
    p_ = mem + sizeof(arena_chunk);
    end_ = mem + size;
    last_size_ = size;
}

} // namespace detail

// ---------------------------------------------------------------------------------------------
// Construction and destruction

term::term(detail::term_node* n) noexcept : tag_(n->tag) {
    u_.node = n;
}

term::term(bigint v) {
    if (v.fits_int64()) {
        tag_ = term_tag::small;
        u_.i = v.to_int64();
    } else {
        auto l = v.limbs();
        auto* n = detail::heap_make<detail::big_node>(detail::big_node::bytes(l.size()),
                                                      std::uint32_t(l.size()));
        std::memcpy(detail::trailing<std::uint32_t>(n), l.data(), l.size() * 4);
        n->small = v.negative() ? 1 : 0;
        tag_ = term_tag::big;
        u_.node = n;
    }
}

term::term(double v) {
    if (!std::isfinite(v)) throw std::invalid_argument("erl::term: Erlang floats are finite");
    tag_ = term_tag::flt;
    u_.f = v;
}

term::term(std::string_view s)
    : term(binary(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()),
                                                s.size()))) {}

term::term(const erl::pid& p) : term(pid(p.node(), p.number(), p.serial(), p.creation())) {}

term::term(const erl::ref& r)
    : term(reference(r.node(), r.creation(), std::span<const std::uint32_t>(r.words()))) {}

namespace {

// Drops one reference; true when it was the last one. A count of 1 means no other owner
// exists that could take a new reference concurrently, so the atomic read-modify-write is
// skipped then (the acquire load still orders this thread after the other owners' releases).
template <typename Count>
bool drop(std::atomic<Count>& refs) noexcept {
    if (refs.load(std::memory_order_acquire) == 1) return true;
    return refs.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

void release_arena(detail::arena* a) noexcept {
    if (drop(a->refs)) detail::free_arena(a);
}

// The nodes still to destroy: a small stack in place, spilling to the heap only for large
// terms, so destruction proceeds with an explicit work list instead of recursion (a deep term
// from the network must not overflow the stack when it dies) without allocating in the
// common case.
class work_list {
  public:
    bool empty() const noexcept { return n_ == 0 && spill_.empty(); }
    void push(detail::term_node* node) {
        if (n_ < inline_.size())
            inline_[n_++] = node;
        else
            spill_.push_back(node);
    }
    detail::term_node* pop() noexcept {
        if (!spill_.empty()) {
            auto* node = spill_.back();
            spill_.pop_back();
            return node;
        }
        return inline_[--n_];
    }

  private:
    std::array<detail::term_node*, 32> inline_;
    std::size_t n_ = 0;
    std::vector<detail::term_node*> spill_;
};

// Moves a heap child out of a dying payload; queues its node when this was the last reference
// (a child in an arena releases the arena, which frees it without walking it).
void take_child(term& child, work_list& work) {
    detail::term_node* n = term_access::steal(child);
    if (!n) return;
    if (n->in_arena)
        release_arena(detail::arena_of(n));
    else if (drop(n->refs))
        work.push(n);
}

void take_children(term* first, std::size_t n, work_list& work) {
    for (std::size_t i = 0; i < n; ++i)
        take_child(first[i], work);
}

// Frees a heap payload whose count reached 0. Payloads are freed without running their
// destructors: the only members needing one are terms, which were taken out (left as []).
void destroy_node(detail::term_node* root) {
    switch (root->tag) { // leaves need no work list
    case term_tag::big:
    case term_tag::atom_text:
    case term_tag::bits:
        ::operator delete(root);
        return;
    default:
        break;
    }
    work_list work;
    work.push(root);
    while (!work.empty()) {
        detail::term_node* n = work.pop();
        switch (n->tag) {
        case term_tag::tuple: {
            auto* t = static_cast<detail::tuple_node*>(n);
            take_children(t->elems(), t->size, work);
            break;
        }
        case term_tag::list: {
            auto* t = static_cast<detail::list_node*>(n);
            take_children(t->elems(), t->size, work);
            take_child(t->tail, work);
            break;
        }
        case term_tag::map: {
            auto* t = static_cast<detail::map_node*>(n);
            auto* e = t->entries();
            for (std::size_t i = 0; i < t->size; ++i) {
                take_child(e[i].first, work);
                take_child(e[i].second, work);
            }
            break;
        }
        case term_tag::pid:
            take_child(static_cast<detail::pid_node*>(n)->node, work);
            break;
        case term_tag::port:
            take_child(static_cast<detail::port_node*>(n)->node, work);
            break;
        case term_tag::ref:
            take_child(static_cast<detail::ref_node*>(n)->node, work);
            break;
        case term_tag::export_fun: {
            auto* t = static_cast<detail::export_node*>(n);
            take_child(t->module, work);
            take_child(t->function, work);
            break;
        }
        case term_tag::local_fun: {
            auto* t = static_cast<detail::local_fun_node*>(n);
            take_child(t->module, work);
            take_child(t->old_index, work);
            take_child(t->old_uniq, work);
            take_child(t->pid, work);
            take_children(t->free(), t->num_free, work);
            break;
        }
        default:
            break; // big, atom_text, bits: no children
        }
        ::operator delete(n);
    }
}

template <typename N>
N* make_seq_node(std::size_t n, std::size_t bytes) {
    if (n > UINT32_MAX) throw std::length_error("erl::term: more than 2^32-1 elements");
    return detail::heap_make<N>(bytes, std::uint32_t(n));
}

detail::bits_node* make_bits_node(std::span<const std::uint8_t> bytes) {
    auto* n =
        detail::heap_make<detail::bits_node>(detail::bits_node::bytes(bytes.size()), bytes.size());
    if (!bytes.empty()) std::memcpy(n->data(), bytes.data(), bytes.size());
    return n;
}

} // namespace

void term::release() noexcept {
    if (!heap()) return;
    detail::term_node* n = u_.node;
    if (n->in_arena)
        release_arena(detail::arena_of(n));
    else if (drop(n->refs))
        destroy_node(n);
    tag_ = term_tag::nil;
}

term term::binary(std::span<const std::uint8_t> bytes) {
    return term(make_bits_node(bytes));
}

term term::binary(std::vector<std::uint8_t>&& bytes) {
    return term(make_bits_node(bytes));
}

term term::bitstring(std::span<const std::uint8_t> bytes, std::size_t bit_size) {
    std::size_t nbytes = (bit_size + 7) / 8;
    if (bytes.size() < nbytes) throw std::invalid_argument("erl::term::bitstring: too few bytes");
    auto* n = make_bits_node(bytes.first(nbytes));
    n->small = std::uint8_t(bit_size % 8 == 0 ? 8 : bit_size % 8);
    if (n->small != 8) n->data()[nbytes - 1] &= std::uint8_t(0xFF << (8 - n->small));
    return term(n);
}

term term::make_atom(std::string_view name) {
    std::size_t chars = detail::utf8_length(name);
    if (chars == SIZE_MAX) throw std::invalid_argument("erl::term: atom name is not UTF-8");
    if (chars > 255) throw std::invalid_argument("erl::term: atom longer than 255 characters");
    return detail::atom_term(name, true);
}

term term::tuple_from(std::vector<term> elements) {
    auto* n = make_seq_node<detail::tuple_node>(elements.size(),
                                                detail::tuple_node::bytes(elements.size()));
    std::uninitialized_move(elements.begin(), elements.end(), n->elems());
    return term(n);
}

term term::list_from(std::vector<term> elements, term tail) {
    if (tail.is_cons()) {
        // [a | [b, c | t]] is [a, b, c | t]: keep the flat form.
        const auto& tl = term_access::as<detail::list_node>(tail);
        auto more = tl.elements();
        elements.insert(elements.end(), more.begin(), more.end());
        tail = term(tl.tail);
    }
    if (elements.empty()) return tail;
    auto* n = make_seq_node<detail::list_node>(elements.size(),
                                               detail::list_node::bytes(elements.size()));
    std::uninitialized_move(elements.begin(), elements.end(), n->elems());
    n->tail = std::move(tail);
    return term(n);
}

term improper_list(std::vector<term> elements, term tail) {
    return term::list_from(std::move(elements), std::move(tail));
}

term charlist(std::string_view s) {
    if (detail::utf8_length(s) == SIZE_MAX)
        throw std::invalid_argument("erl::charlist: text is not UTF-8");
    std::vector<term> v;
    for (std::size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        std::uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (std::size_t k = 1; k < len; ++k)
            cp = (cp << 6) | (s[i + k] & 0x3F);
        v.emplace_back(cp);
        i += len;
    }
    return term::list_from(std::move(v));
}

term term::map_from(std::vector<std::pair<term, term>> entries) {
    // Already sorted with unique keys (what ETF from Erlang carries for maps up to 32 keys, and
    // what re-encoding our own maps gives): taken as is.
    bool sorted = true;
    for (std::size_t i = 1; i < entries.size(); ++i)
        if (!(entries[i - 1].first < entries[i].first)) {
            sorted = false;
            break;
        }
    auto node_of = [](std::vector<std::pair<term, term>>& e) {
        auto* n = make_seq_node<detail::map_node>(e.size(), detail::map_node::bytes(e.size()));
        std::uninitialized_move(e.begin(), e.end(), n->entries());
        return term(n);
    };
    if (sorted) return node_of(entries);
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    // Keep the last of equal keys.
    std::vector<std::pair<term, term>> out;
    out.reserve(entries.size());
    for (auto& e : entries) {
        if (!out.empty() && out.back().first == e.first)
            out.back().second = std::move(e.second);
        else
            out.push_back(std::move(e));
    }
    return node_of(out);
}

term term::pid(atom node, std::uint32_t id, std::uint32_t serial, std::uint32_t creation) {
    auto* n = detail::heap_make<detail::pid_node>();
    n->node = term(node);
    n->id = id;
    n->serial = serial;
    n->creation = creation;
    return term(n);
}

term term::port(atom node, std::uint64_t id, std::uint32_t creation) {
    auto* n = detail::heap_make<detail::port_node>();
    n->node = term(node);
    n->id = id;
    n->creation = creation;
    return term(n);
}

term term::reference(atom node, std::uint32_t creation, std::span<const std::uint32_t> words) {
    if (words.empty() || words.size() > 5)
        throw std::invalid_argument("erl::term::reference: 1 to 5 words");
    auto* n = detail::heap_make<detail::ref_node>();
    n->node = term(node);
    n->creation = creation;
    n->len = std::uint8_t(words.size());
    std::copy(words.begin(), words.end(), n->words.begin());
    return term(n);
}

term term::export_fun(atom module, atom function, std::uint8_t arity) {
    auto* n = detail::heap_make<detail::export_node>();
    n->module = term(module);
    n->function = term(function);
    n->arity = arity;
    return term(n);
}

// ---------------------------------------------------------------------------------------------
// Kinds and accessors

term_kind term::kind() const noexcept {
    switch (tag_) {
    case term_tag::small:
    case term_tag::big:
        return term_kind::integer;
    case term_tag::flt:
        return term_kind::float_;
    case term_tag::atom:
    case term_tag::atom_text:
        return term_kind::atom;
    case term_tag::ref:
        return term_kind::reference;
    case term_tag::export_fun:
    case term_tag::local_fun:
        return term_kind::fun;
    case term_tag::port:
        return term_kind::port;
    case term_tag::pid:
        return term_kind::pid;
    case term_tag::tuple:
        return term_kind::tuple;
    case term_tag::map:
        return term_kind::map;
    case term_tag::nil:
        return term_kind::nil;
    case term_tag::list:
        return term_kind::list;
    case term_tag::bits:
        return term_kind::bitstring;
    }
    return term_kind::nil;
}

namespace {
[[noreturn]] void bad_access(const term& t, std::string_view wanted) {
    throw bad_term_access(fmt::format("erl::term: expected {}, got {}", wanted, t.to_string()));
}
} // namespace

bool term::is_atom(atom a) const noexcept {
    if (tag_ == term_tag::atom) return u_.atom == a.index();
    if (tag_ == term_tag::atom_text)
        return term_access::as<detail::atom_text_node>(*this).name() == a.name();
    return false;
}

bool term::is_tagged_tuple(atom tag, std::size_t arity) const noexcept {
    return is_tuple(arity) && arity > 0 &&
           term_access::as<detail::tuple_node>(*this).elements()[0].is_atom(tag);
}

bool term::is_proper_list() const noexcept {
    return is_nil() || (is_cons() && term_access::as<detail::list_node>(*this).tail.is_nil());
}

bool term::is_binary() const noexcept {
    return is_bitstring() && term_access::as<detail::bits_node>(*this).tail_bits() == 8;
}

std::int64_t term::as_int64() const {
    if (tag_ != term_tag::small) bad_access(*this, "an integer in the int64 range");
    return u_.i;
}

bigint term::as_bigint() const {
    if (tag_ == term_tag::small) return bigint(u_.i);
    if (tag_ == term_tag::big) {
        const auto& n = term_access::as<detail::big_node>(*this);
        return bigint::from_limbs(n.limbs(), n.negative());
    }
    bad_access(*this, "an integer");
}

double term::as_double() const {
    if (tag_ != term_tag::flt) bad_access(*this, "a float");
    return u_.f;
}

double to_double(const term& t) {
    if (t.is_float()) return t.as_double();
    if (t.is_small_int()) return double(t.as_int64());
    if (t.is_integer()) return t.as_bigint().to_double();
    throw bad_term_access(fmt::format("erl::term: expected a number, got {}", t.to_string()));
}

bool term::as_bool() const {
    if (is_atom(atoms::true_)) return true;
    if (is_atom(atoms::false_)) return false;
    bad_access(*this, "a boolean");
}

atom term::as_atom() const {
    if (tag_ == term_tag::atom) {
        atom a;
        static_assert(sizeof(atom) == sizeof(std::uint32_t));
        std::memcpy(static_cast<void*>(&a), &u_.atom, sizeof a);
        return a;
    }
    if (tag_ == term_tag::atom_text)
        return atom(term_access::as<detail::atom_text_node>(*this).name());
    bad_access(*this, "an atom");
}

std::string_view term::atom_name() const {
    if (tag_ == term_tag::atom) return as_atom().name();
    if (tag_ == term_tag::atom_text) return term_access::as<detail::atom_text_node>(*this).name();
    bad_access(*this, "an atom");
}

erl::pid term::as_pid() const {
    if (!is_pid()) bad_access(*this, "a pid");
    const auto& n = term_access::as<detail::pid_node>(*this);
    return erl::pid(n.node.as_atom(), n.id, n.serial, n.creation);
}

erl::ref term::as_ref() const {
    if (!is_ref()) bad_access(*this, "a reference");
    const auto& n = term_access::as<detail::ref_node>(*this);
    return erl::ref(n.node.as_atom(), n.creation,
                    std::span<const std::uint32_t>(n.words.data(), n.len));
}

std::span<const std::uint8_t> term::bytes() const {
    if (!is_bitstring()) bad_access(*this, "a binary");
    return term_access::as<detail::bits_node>(*this).bytes();
}

std::string_view term::as_string_view() const {
    if (!is_binary()) bad_access(*this, "a binary");
    auto b = term_access::as<detail::bits_node>(*this).bytes();
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::size_t term::bit_size() const {
    if (!is_bitstring()) bad_access(*this, "a bitstring");
    const auto& n = term_access::as<detail::bits_node>(*this);
    return n.size == 0 ? 0 : (n.size - 1) * 8 + n.tail_bits();
}

std::span<const term> term::elements() const {
    if (tag_ == term_tag::tuple) return term_access::as<detail::tuple_node>(*this).elements();
    if (tag_ == term_tag::list) return term_access::as<detail::list_node>(*this).elements();
    if (tag_ == term_tag::nil) return {};
    bad_access(*this, "a tuple or list");
}

std::size_t term::size() const {
    switch (tag_) {
    case term_tag::tuple:
        return term_access::as<detail::tuple_node>(*this).size;
    case term_tag::list:
        return term_access::as<detail::list_node>(*this).size;
    case term_tag::nil:
        return 0;
    case term_tag::map:
        return term_access::as<detail::map_node>(*this).size;
    case term_tag::bits:
        return term_access::as<detail::bits_node>(*this).size;
    default:
        bad_access(*this, "a tuple, list, map or binary");
    }
}

const term& term::operator[](std::size_t i) const {
    auto e = elements();
    if (i >= e.size())
        throw std::out_of_range(fmt::format("erl::term: index {} of {} elements", i, e.size()));
    return e[i];
}

const term& term::tail() const {
    static const term nil;
    if (tag_ == term_tag::list) return term_access::as<detail::list_node>(*this).tail;
    if (tag_ == term_tag::nil) return nil;
    bad_access(*this, "a list");
}

std::span<const std::pair<term, term>> term::map_entries() const {
    if (!is_map()) bad_access(*this, "a map");
    return term_access::as<detail::map_node>(*this).entries();
}

const term* term::find(const term& key) const {
    auto e = map_entries();
    auto it = std::lower_bound(e.begin(), e.end(), key,
                               [](const auto& kv, const term& k) { return kv.first < k; });
    return it != e.end() && it->first == key ? &it->second : nullptr;
}

namespace {
const term& node_of(const term& t) {
    switch (term_access::tag(t)) {
    case term_tag::pid:
        return term_access::as<detail::pid_node>(t).node;
    case term_tag::port:
        return term_access::as<detail::port_node>(t).node;
    case term_tag::ref:
        return term_access::as<detail::ref_node>(t).node;
    default:
        bad_access(t, "a pid, port or reference");
    }
}
} // namespace

std::string_view term::node_name() const {
    return node_of(*this).atom_name();
}
term term::node() const {
    return node_of(*this);
}

std::uint64_t term::id() const {
    if (is_pid()) return term_access::as<detail::pid_node>(*this).id;
    if (is_port()) return term_access::as<detail::port_node>(*this).id;
    bad_access(*this, "a pid or port");
}

std::uint32_t term::serial() const {
    if (is_pid()) return term_access::as<detail::pid_node>(*this).serial;
    bad_access(*this, "a pid");
}

std::uint32_t term::creation() const {
    switch (tag_) {
    case term_tag::pid:
        return term_access::as<detail::pid_node>(*this).creation;
    case term_tag::port:
        return term_access::as<detail::port_node>(*this).creation;
    case term_tag::ref:
        return term_access::as<detail::ref_node>(*this).creation;
    default:
        bad_access(*this, "a pid, port or reference");
    }
}

std::span<const std::uint32_t> term::ref_words() const {
    if (!is_ref()) bad_access(*this, "a reference");
    const auto& n = term_access::as<detail::ref_node>(*this);
    return {n.words.data(), n.len};
}

std::string_view term::fun_module() const {
    if (is_export_fun()) return term_access::as<detail::export_node>(*this).module.atom_name();
    if (tag_ == term_tag::local_fun)
        return term_access::as<detail::local_fun_node>(*this).module.atom_name();
    bad_access(*this, "a fun");
}

std::string_view term::fun_name() const {
    if (is_export_fun()) return term_access::as<detail::export_node>(*this).function.atom_name();
    if (tag_ == term_tag::local_fun) return "-fun-";
    bad_access(*this, "a fun");
}

unsigned term::fun_arity() const {
    if (is_export_fun()) return term_access::as<detail::export_node>(*this).arity;
    if (tag_ == term_tag::local_fun) return term_access::as<detail::local_fun_node>(*this).arity;
    bad_access(*this, "a fun");
}

// ---------------------------------------------------------------------------------------------
// Equality, order, hashing

namespace {

int sign(auto c) {
    return c < 0 ? -1 : c > 0 ? 1 : 0;
}

// Compares an int64 with a finite double by value; 0 when equal.
int cmp_int_float(std::int64_t i, double d) {
    if (d >= 9223372036854775808.0) return -1;
    if (d < -9223372036854775808.0) return 1;
    double t = std::trunc(d);
    auto ti = std::int64_t(t);
    if (i != ti) return i < ti ? -1 : 1;
    double frac = d - t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

int cmp(const term& a, const term& b, bool exact);

int cmp_numbers(const term& a, const term& b, bool exact) {
    auto ta = term_access::tag(a), tb = term_access::tag(b);
    if (ta == term_tag::flt && tb == term_tag::flt) {
        double x = a.as_double(), y = b.as_double();
        if (x != y) return x < y ? -1 : 1;
        if (exact && std::signbit(x) != std::signbit(y)) return std::signbit(x) ? -1 : 1;
        return 0;
    }
    if (ta != term_tag::flt && tb != term_tag::flt) {
        if (ta == term_tag::small && tb == term_tag::small)
            return sign(a.as_int64() <=> b.as_int64());
        return sign(a.as_bigint() <=> b.as_bigint());
    }
    // An integer and a float: by value; when equal, =:= puts the integer first.
    bool a_is_int = ta != term_tag::flt;
    const term& i = a_is_int ? a : b;
    double d = a_is_int ? b.as_double() : a.as_double();
    int c;
    if (term_access::tag(i) == term_tag::small) {
        c = cmp_int_float(i.as_int64(), d);
    } else {
        auto o = compare(i.as_bigint(), d);
        c = o < 0 ? -1 : o > 0 ? 1 : 0;
    }
    if (c == 0 && exact) c = -1;
    return a_is_int ? c : -c;
}

int cmp_atoms(const term& a, const term& b) {
    if (term_access::tag(a) == term_tag::atom && term_access::tag(b) == term_tag::atom &&
        term_access::atom_index(a) == term_access::atom_index(b))
        return 0;
    return sign(a.atom_name().compare(b.atom_name()));
}

int cmp_bits(const detail::bits_node& an, const detail::bits_node& bn) {
    auto a = an.bytes(), b = bn.bytes();
    std::size_t abits = a.empty() ? 0 : (a.size() - 1) * 8 + an.tail_bits();
    std::size_t bbits = b.empty() ? 0 : (b.size() - 1) * 8 + bn.tail_bits();
    std::size_t common = std::min(abits, bbits);
    std::size_t full = common / 8;
    if (full) {
        int c = std::memcmp(a.data(), b.data(), full);
        if (c) return sign(c);
    }
    if (unsigned rest = common % 8) {
        auto mask = std::uint8_t(0xFF << (8 - rest));
        std::uint8_t x = a[full] & mask, y = b[full] & mask;
        if (x != y) return x < y ? -1 : 1;
    }
    return sign(abits <=> bbits);
}

int cmp_seq(std::span<const term> a, std::span<const term> b, bool exact) {
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
        if (int c = cmp(a[i], b[i], exact)) return c;
    return sign(a.size() <=> b.size());
}

int cmp_lists(const term& a, const term& b, bool exact) {
    auto ea = a.elements(), eb = b.elements();
    std::size_t n = std::min(ea.size(), eb.size());
    for (std::size_t i = 0; i < n; ++i)
        if (int c = cmp(ea[i], eb[i], exact)) return c;
    // The rest of one side (a non-empty list) against the tail of the other, which is never a
    // non-empty list: their kinds decide.
    if (ea.size() == eb.size()) return cmp(a.tail(), b.tail(), exact);
    if (ea.size() > n) return sign(term_kind::list <=> b.tail().kind());
    return sign(a.tail().kind() <=> term_kind::list);
}

int cmp_node_terms(const term& a, const term& b) {
    return cmp_atoms(a, b);
}

int cmp(const term& a, const term& b, bool exact) {
    auto ka = a.kind(), kb = b.kind();
    bool na = ka == term_kind::integer || ka == term_kind::float_;
    bool nb = kb == term_kind::integer || kb == term_kind::float_;
    if (na && nb) return cmp_numbers(a, b, exact);
    if (ka != kb) return sign(ka <=> kb);
    switch (ka) {
    case term_kind::atom:
        return cmp_atoms(a, b);
    case term_kind::nil:
        return 0;
    case term_kind::tuple: {
        auto ea = a.elements(), eb = b.elements();
        if (ea.size() != eb.size()) return sign(ea.size() <=> eb.size());
        return cmp_seq(ea, eb, exact);
    }
    case term_kind::list:
        return cmp_lists(a, b, exact);
    case term_kind::map: {
        // By size, then keys in order, then values in key order (Erlang's map order).
        auto ea = a.map_entries(), eb = b.map_entries();
        if (ea.size() != eb.size()) return sign(ea.size() <=> eb.size());
        for (std::size_t i = 0; i < ea.size(); ++i)
            if (int c = cmp(ea[i].first, eb[i].first, true)) return c;
        for (std::size_t i = 0; i < ea.size(); ++i)
            if (int c = cmp(ea[i].second, eb[i].second, exact)) return c;
        return 0;
    }
    case term_kind::bitstring:
        return cmp_bits(term_access::as<detail::bits_node>(a),
                        term_access::as<detail::bits_node>(b));
    case term_kind::pid: {
        const auto& x = term_access::as<detail::pid_node>(a);
        const auto& y = term_access::as<detail::pid_node>(b);
        // As OTP (checked against 25): serial, then number, and only then the node (name,
        // creation); a pid of another node sorts among the local ones by its numbers.
        if (x.serial != y.serial) return x.serial < y.serial ? -1 : 1;
        if (x.id != y.id) return x.id < y.id ? -1 : 1;
        if (int c = cmp_node_terms(x.node, y.node)) return c;
        return sign(x.creation <=> y.creation);
    }
    case term_kind::port: {
        const auto& x = term_access::as<detail::port_node>(a);
        const auto& y = term_access::as<detail::port_node>(b);
        // Ports and references: the node first (name, then creation), then the numbers.
        if (int c = cmp_node_terms(x.node, y.node)) return c;
        if (x.creation != y.creation) return x.creation < y.creation ? -1 : 1;
        if (x.id != y.id) return x.id < y.id ? -1 : 1;
        return 0;
    }
    case term_kind::reference: {
        const auto& x = term_access::as<detail::ref_node>(a);
        const auto& y = term_access::as<detail::ref_node>(b);
        if (int c = cmp_node_terms(x.node, y.node)) return c;
        if (x.creation != y.creation) return x.creation < y.creation ? -1 : 1;
        // Words beyond a reference's length count as zero, as in OTP: #Ref<N.0.0.1> =:= the
        // five-word reference with the same three low words. Unused words are kept zero.
        for (std::size_t i = x.words.size(); i-- > 0;) // most significant word last
            if (x.words[i] != y.words[i]) return x.words[i] < y.words[i] ? -1 : 1;
        return 0;
    }
    case term_kind::fun: {
        bool xa = a.is_export_fun(), xb = b.is_export_fun();
        if (xa != xb) return xa ? 1 : -1; // closures before exports
        if (xa) {
            const auto& x = term_access::as<detail::export_node>(a);
            const auto& y = term_access::as<detail::export_node>(b);
            if (int c = cmp_atoms(x.module, y.module)) return c;
            if (int c = cmp_atoms(x.function, y.function)) return c;
            return sign(x.arity <=> y.arity);
        }
        const auto& x = term_access::as<detail::local_fun_node>(a);
        const auto& y = term_access::as<detail::local_fun_node>(b);
        if (int c = cmp_atoms(x.module, y.module)) return c;
        if (x.index != y.index) return x.index < y.index ? -1 : 1;
        if (x.uniq != y.uniq) return x.uniq < y.uniq ? -1 : 1;
        if (x.arity != y.arity) return x.arity < y.arity ? -1 : 1;
        if (int c = cmp(x.old_index, y.old_index, exact)) return c;
        if (int c = cmp(x.old_uniq, y.old_uniq, exact)) return c;
        if (int c = cmp(x.pid, y.pid, exact)) return c;
        return cmp_seq(x.free_vars(), y.free_vars(), exact);
    }
    default:
        return 0;
    }
}

} // namespace

bool operator==(const term& a, const term& b) noexcept {
    auto ta = term_access::tag(a), tb = term_access::tag(b);
    if (ta == tb && !term_access::node(a)) {
        switch (ta) {
        case term_tag::small:
            return a.as_int64() == b.as_int64();
        case term_tag::atom:
            return term_access::atom_index(a) == term_access::atom_index(b);
        case term_tag::nil:
            return true;
        default:
            break;
        }
    }
    if (ta == tb && term_access::node(a) && term_access::node(a) == term_access::node(b))
        return true; // the same payload
    return cmp(a, b, true) == 0;
}

std::strong_ordering operator<=>(const term& a, const term& b) noexcept {
    int c = cmp(a, b, true);
    return c < 0   ? std::strong_ordering::less
           : c > 0 ? std::strong_ordering::greater
                   : std::strong_ordering::equal;
}

bool equal(const term& a, const term& b) noexcept {
    return cmp(a, b, false) == 0;
}

std::weak_ordering compare(const term& a, const term& b) noexcept {
    int c = cmp(a, b, false);
    return c < 0   ? std::weak_ordering::less
           : c > 0 ? std::weak_ordering::greater
                   : std::weak_ordering::equivalent;
}

namespace {
inline std::size_t mix(std::size_t h, std::size_t v) noexcept {
    return (h ^ v) * 0x100000001B3ull + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
}
} // namespace

std::size_t term::hash() const noexcept {
    std::size_t h = std::size_t(kind()) * 0x9E3779B97F4A7C15ull;
    switch (tag_) {
    case term_tag::small:
        return mix(h, std::hash<std::int64_t>{}(u_.i));
    case term_tag::flt: {
        std::uint64_t bits;
        std::memcpy(&bits, &u_.f, sizeof bits);
        return mix(h + 1, std::hash<std::uint64_t>{}(bits));
    }
    case term_tag::big:
        for (auto l : term_access::as<detail::big_node>(*this).limbs())
            h = mix(h, l);
        return mix(h, term_access::as<detail::big_node>(*this).negative());
    case term_tag::atom:
    case term_tag::atom_text:
        return mix(h, std::hash<std::string_view>{}(atom_name()));
    case term_tag::nil:
        return h;
    case term_tag::tuple:
    case term_tag::list:
        for (const auto& e : elements())
            h = mix(h, e.hash());
        if (tag_ == term_tag::list) h = mix(h, tail().hash());
        return h;
    case term_tag::map:
        for (const auto& [k, v] : map_entries())
            h = mix(mix(h, k.hash()), v.hash());
        return h;
    case term_tag::bits:
        return mix(mix(h, std::hash<std::string_view>{}(std::string_view(
                              reinterpret_cast<const char*>(bytes().data()), bytes().size()))),
                   bit_size());
    case term_tag::pid:
        return mix(mix(mix(h, node().hash()), id()), serial() ^ (std::size_t(creation()) << 32));
    case term_tag::port:
        return mix(mix(mix(h, node().hash()), id()), creation());
    case term_tag::ref:
        h = mix(h, node().hash());
        for (auto w : term_access::as<detail::ref_node>(*this).words) // all five: see cmp
            h = mix(h, w);
        return mix(h, creation());
    case term_tag::export_fun:
        return mix(mix(mix(h, std::hash<std::string_view>{}(fun_module())),
                       std::hash<std::string_view>{}(fun_name())),
                   fun_arity());
    case term_tag::local_fun: {
        const auto& n = term_access::as<detail::local_fun_node>(*this);
        h = mix(mix(h, std::hash<std::string_view>{}(fun_module())), n.index);
        for (auto b : n.uniq)
            h = mix(h, b);
        return h;
    }
    }
    return h;
}

term_parse_error::term_parse_error(std::size_t offset, const std::string& what)
    : std::runtime_error(fmt::format("erl::term::parse: at offset {}: {}", offset, what)),
      offset_(offset) {}

} // namespace erl
