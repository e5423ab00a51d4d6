#include <erl/atom.hpp>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

namespace erl {
namespace {

// Append-only table. Names are read without a lock: an entry is written once before its index
// is published (under the mutex, and by whoever returns the atom, with release semantics), and
// chunks never move.
class atom_table {
  public:
    static constexpr std::size_t chunk_bits = 12;
    static constexpr std::size_t chunk_size = std::size_t(1) << chunk_bits;
    static constexpr std::size_t max_chunks = 4096; // 16 M atoms

    atom_table() { intern(""); }

    std::uint32_t intern(std::string_view name) {
        if (name.size() > atom::max_length)
            throw std::length_error("erl::atom: name longer than 255 characters");
        std::lock_guard lock(mutex_);
        if (auto it = index_.find(name); it != index_.end()) return it->second;
        std::size_t i = size_.load(std::memory_order_relaxed);
        if (i >= chunk_size * max_chunks) throw std::length_error("erl::atom: atom table full");
        auto& chunk = chunks_[i >> chunk_bits];
        if (!chunk) chunk = std::make_unique<std::string_view[]>(chunk_size);
        char* text = new char[name.size() + 1]; // owned by the table for the program's life
        name.copy(text, name.size());
        text[name.size()] = '\0';
        std::string_view stored(text, name.size());
        chunk[i & (chunk_size - 1)] = stored;
        index_.emplace(stored, std::uint32_t(i));
        size_.store(i + 1, std::memory_order_release);
        return std::uint32_t(i);
    }

    std::optional<std::uint32_t> find(std::string_view name) {
        std::lock_guard lock(mutex_);
        if (auto it = index_.find(name); it != index_.end()) return it->second;
        return std::nullopt;
    }

    std::string_view name(std::uint32_t i) const noexcept {
        return chunks_[i >> chunk_bits][i & (chunk_size - 1)];
    }
    std::size_t size() const noexcept { return size_.load(std::memory_order_acquire); }

  private:
    std::mutex mutex_;
    std::unordered_map<std::string_view, std::uint32_t> index_;
    std::array<std::unique_ptr<std::string_view[]>, max_chunks> chunks_;
    std::atomic<std::size_t> size_{0};
};

atom_table& table() {
    static atom_table* t = new atom_table; // never destroyed: atoms outlive static destructors
    return *t;
}

bool is_unquoted_start(char c) {
    return c >= 'a' && c <= 'z';
}
bool is_unquoted_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '@';
}
bool is_reserved_word(std::string_view s) {
    static constexpr std::string_view words[] = {
        "after", "and",    "andalso", "band", "begin", "bnot", "bor", "bsl",   "bsr", "bxor",
        "case",  "catch",  "cond",    "div",  "end",   "fun",  "if",  "let",   "not", "of",
        "or",    "orelse", "receive", "rem",  "try",   "when", "xor", "maybe", "else"};
    for (auto w : words)
        if (s == w) return true;
    return false;
}

} // namespace

atom::atom(std::string_view name) : index_(table().intern(name)) {}

std::optional<atom> atom::existing(std::string_view name) {
    auto i = table().find(name);
    if (!i) return std::nullopt;
    atom a;
    a.index_ = *i;
    return a;
}

std::string_view atom::name() const noexcept {
    return table().name(index_);
}

std::strong_ordering operator<=>(atom a, atom b) noexcept {
    if (a.index_ == b.index_) return std::strong_ordering::equal;
    return a.name().compare(b.name()) <=> 0;
}

static bool text_needs_quotes(std::string_view s) noexcept {
    if (s.empty() || !is_unquoted_start(s.front())) return true;
    for (char c : s)
        if (!is_unquoted_char(c)) return true;
    return is_reserved_word(s);
}

bool atom::needs_quotes() const noexcept {
    return text_needs_quotes(name());
}

std::size_t atom::table_size() noexcept {
    return table().size();
}

namespace detail {
void append_quoted(std::string& out, std::string_view s, char quote) {
    out.push_back(quote);
    for (unsigned char c : s) {
        switch (c) {
        case '\\':
            out.append("\\\\");
            break;
        case '\n':
            out.append("\\n");
            break;
        case '\t':
            out.append("\\t");
            break;
        case '\r':
            out.append("\\r");
            break;
        default:
            if (c == static_cast<unsigned char>(quote)) {
                out.push_back('\\');
                out.push_back(quote);
            } else if (c < 0x20 || c == 0x7f) {
                out.append(fmt::format("\\{:o}", c));
            } else {
                out.push_back(char(c));
            }
        }
    }
    out.push_back(quote);
}
} // namespace detail

void format_atom_to(std::string& out, std::string_view s) {
    if (text_needs_quotes(s)) {
        detail::append_quoted(out, s, '\'');
    } else {
        out.append(s);
    }
}

namespace atoms {
const atom empty{""};
const atom ok{"ok"};
const atom error{"error"};
const atom undefined{"undefined"};
const atom normal{"normal"};
const atom kill{"kill"};
const atom killed{"killed"};
const atom shutdown{"shutdown"};
const atom noproc{"noproc"};
const atom noconnection{"noconnection"};
const atom timeout{"timeout"};
const atom exception{"exception"};
const atom nonode_nohost{"nonode@nohost"};
const atom true_{"true"};
const atom false_{"false"};
} // namespace atoms

} // namespace erl
