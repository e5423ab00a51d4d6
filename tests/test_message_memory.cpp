// Message memory (src/scheduler/message_cache.hpp): blocks from the schedulers' caches.
#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "context/sanitizers.hpp"
#include "scheduler/message_cache.hpp"

using erl::detail::message_cache;

#if !ERLCPP_ASAN // (under ASan every message is its own allocation)
namespace {
template <std::size_t Size>
std::vector<void*> allocate_blocks(int n) {
    std::vector<void*> blocks;
    for (int i = 0; i < n; ++i)
        blocks.push_back(erl::detail::allocate_message_sized<Size>());
    return blocks;
}
template <std::size_t Size>
void free_blocks(const std::vector<void*>& blocks) {
    for (void* b : blocks)
        erl::detail::free_message_sized<Size>(b);
}
bool all_aligned(const std::vector<void*>& blocks, std::uintptr_t to) {
    return std::all_of(blocks.begin(), blocks.end(),
                       [to](void* b) { return reinterpret_cast<std::uintptr_t>(b) % to == 0; });
}
// Some two blocks share a cache line.
bool some_share_a_line(const std::vector<void*>& blocks) {
    std::set<std::uintptr_t> lines;
    for (void* b : blocks)
        if (!lines.insert(reinterpret_cast<std::uintptr_t>(b) / 64).second) return true;
    return false;
}
template <std::size_t Size>
bool blocks_are_whole_lines(int n) {
    auto blocks = allocate_blocks<Size>(n);
    bool ok = all_aligned(blocks, 64) && !some_share_a_line(blocks);
    free_blocks<Size>(blocks);
    return ok;
}
// A block of the class from the cache.
void* take(message_cache& c, std::size_t cls) {
    if (void* b = c.take(cls)) return b;
    return c.refill(cls);
}
void give(message_cache& c, std::size_t cls, void* b) {
    if (!c.give(cls, b)) c.give_over(cls, b);
}
} // namespace
#endif

TEST_CASE("an envelope's header is three words", "[message][memory]") {
    // The links and the ops pointer, which carries the signal kind in its low bits: a message
    // of up to 8 bytes fits 32 bytes, one of up to 40 a cache line.
    struct empty_msg {};
    using erl::detail::message_envelope;
    CHECK(sizeof(erl::detail::envelope) == 24);
    CHECK(sizeof(message_envelope<empty_msg>) <= 32);
    CHECK(sizeof(message_envelope<std::int64_t>) == 32);
    CHECK(sizeof(message_envelope<std::array<char, 40>>) == 64);
    // The signal kind rides in the ops pointer's low bits and changes without touching the rest.
    auto e = erl::detail::make_message<std::int64_t>(42);
    CHECK(e->kind() == erl::detail::signal_kind::message);
    e->set_kind(erl::detail::signal_kind::down);
    CHECK(e->kind() == erl::detail::signal_kind::down);
    CHECK(e->type() == erl::detail::type_key_of<std::int64_t>());
    e->set_kind(erl::detail::signal_kind::message);
    CHECK(static_cast<message_envelope<std::int64_t>&>(*e).value == 42);
}

#if !ERLCPP_ASAN
TEST_CASE("messages of several schedulers never share a cache line", "[message][memory]") {
    // With several schedulers, blocks of every size start on a cache line and fill whole lines
    // (those of up to 32 bytes are cut one per line), so blocks reused on two schedulers never
    // share one.
    erl::runtime rt({.schedulers = 2});
    bool ok = false;
    rt.run([&] {
        ok = blocks_are_whole_lines<24>(300) && blocks_are_whole_lines<32>(300) &&
             blocks_are_whole_lines<41>(300) && blocks_are_whole_lines<48>(300) &&
             blocks_are_whole_lines<64>(300) && blocks_are_whole_lines<80>(300) &&
             blocks_are_whole_lines<200>(300) && blocks_are_whole_lines<256>(300);
    });
    CHECK(ok);
    // From a plain thread (the shared pool) too.
    CHECK(blocks_are_whole_lines<32>(300));
    CHECK(blocks_are_whole_lines<48>(300));
}

TEST_CASE("messages of up to 8 bytes are dense with one scheduler", "[message][memory]") {
    // Every process runs on the one thread: blocks of up to 32 bytes share lines (a parent
    // holding a million `done` messages holds 32 MB, not 64), bigger ones still fill lines.
    erl::runtime rt({.schedulers = 1});
    bool dense = false, lines = false;
    rt.run([&] {
        auto small = allocate_blocks<32>(300);
        dense = all_aligned(small, 32) && some_share_a_line(small);
        free_blocks<32>(small);
        lines = blocks_are_whole_lines<48>(300) && blocks_are_whole_lines<64>(300);
    });
    CHECK(dense);
    CHECK(lines);
}

TEST_CASE("a dense block freed on another thread goes back to the cache that cut it",
          "[message][memory]") {
    message_cache owner(true), other(true), pooled(false);
    std::vector<void*> blocks;
    for (int i = 0; i < 200; ++i)
        blocks.push_back(take(owner, 1));
    REQUIRE(owner.owner() != nullptr);
    for (void* b : blocks)
        CHECK(message_cache::owner_of(b) == owner.owner());
    const std::size_t before = message_cache::returned_count(owner.owner(), 1);
    // Half freed by another dense cache, half by a pooled one: none stays there.
    for (std::size_t i = 0; i < blocks.size(); ++i)
        give(i % 2 ? other : pooled, 1, blocks[i]);
    other.trim(0); // (sends what is on its way home)
    pooled.trim(0);
    CHECK(message_cache::returned_count(owner.owner(), 1) == before + 200);
    for (int i = 0; i < 1000; ++i) {
        void* b = take(other, 1);
        CHECK(message_cache::owner_of(b) == other.owner());
        give(other, 1, b);
        void* p = take(pooled, 1);
        CHECK(message_cache::owner_of(p) == nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % 64 == 0);
        give(pooled, 1, p);
    }
    // The owner takes them back when its free list runs dry, before it cuts new blocks.
    std::set<void*> freed(blocks.begin(), blocks.end());
    std::vector<void*> again;
    std::size_t back = 0;
    while (back < 200 && again.size() < 5'000'000) {
        again.push_back(take(owner, 1));
        back += freed.count(again.back());
    }
    CHECK(back == 200);
    for (void* b : again)
        give(owner, 1, b);
}

TEST_CASE("a dense cache's blocks go to the next cache that adopts its owner",
          "[message][memory]") {
    const erl::detail::block_owner* record = nullptr;
    void* block = nullptr;
    {
        message_cache first(true);
        block = take(first, 1);
        record = first.owner();
        give(first, 1, block);
    } // first ends: its owner record, with its blocks, waits for another cache
    message_cache next(true);
    void* b = take(next, 1);
    CHECK(next.owner() == record);
    CHECK(message_cache::owner_of(b) == record);
    give(next, 1, b);
}

#endif

TEST_CASE("a plain thread's small message to a process of one scheduler loses nothing",
          "[message][memory][race]") {
    // Blocks cross between pooled (plain thread) and dense (one scheduler) memory both ways.
    erl::runtime rt({.schedulers = 1});
    std::int64_t sum = 0;
    rt.run([&] {
        erl::pid me = erl::self();
        std::thread t([me] {
            for (std::int64_t i = 1; i <= 10'000; ++i)
                erl::send(me, i);
        });
        for (int i = 0; i < 10'000; ++i)
            sum += erl::receive([](std::int64_t v) { return v; });
        t.join();
    });
    CHECK(sum == 10'000 * 10'001 / 2);
}

TEST_CASE("two runtimes of one scheduler exchange small messages both ways",
          "[message][memory][race]") {
    // Each frees the other's dense blocks, which go home while their owner allocates more.
    erl::runtime a({.schedulers = 1}), b({.schedulers = 1});
    constexpr std::int64_t n = 50'000;
    std::atomic<std::int64_t> sum_a{0}, sum_b{0};
    auto sink = [](std::atomic<std::int64_t>* sum) {
        std::int64_t s = 0;
        for (std::int64_t i = 0; i < n; ++i)
            s += erl::receive([](std::int64_t v) { return v; });
        sum->store(s);
    };
    erl::pid to_a = a.spawn(sink, &sum_a);
    erl::pid to_b = b.spawn(sink, &sum_b);
    auto source = [](erl::pid to) {
        for (std::int64_t i = 1; i <= n; ++i)
            erl::send(to, i);
    };
    a.spawn(source, to_b);
    b.spawn(source, to_a);
    a.wait();
    b.wait();
    CHECK(sum_a.load() == n * (n + 1) / 2);
    CHECK(sum_b.load() == n * (n + 1) / 2);
}
