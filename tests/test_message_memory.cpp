// Message memory (src/scheduler/message_cache.hpp): blocks from the schedulers' caches.
#include <catch2/catch.hpp>

#include <erl/erl.hpp>

#include <array>
#include <cstdint>
#include <vector>

#include "context/sanitizers.hpp"

#if !ERLCPP_ASAN
namespace {
template <std::size_t Size>
bool blocks_are_whole_lines(int n) {
    std::vector<void*> blocks;
    bool ok = true;
    for (int i = 0; i < n; ++i) {
        void* b = erl::detail::allocate_message_sized<Size>();
        ok = ok && reinterpret_cast<std::uintptr_t>(b) % 64 == 0;
        blocks.push_back(b);
    }
    for (void* b : blocks)
        erl::detail::free_message_sized<Size>(b);
    return ok;
}
} // namespace
#endif

TEST_CASE("an envelope's header is three words", "[message][memory]") {
    // The links and the ops pointer, which carries the signal kind in its low bits: a message
    // of up to 40 bytes fits one cache line.
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

// (Under ASan every message is its own allocation.)
#if !ERLCPP_ASAN
TEST_CASE("message blocks never share a cache line", "[message][memory]") {
    // Blocks of more than 16 bytes (every message: an envelope's header is 24) start on a cache
    // line and fill whole lines, so blocks reused on two schedulers never share one.
    erl::runtime rt({.schedulers = 1});
    bool ok = false;
    rt.run([&] {
        ok = blocks_are_whole_lines<24>(300) && blocks_are_whole_lines<32>(300) &&
             blocks_are_whole_lines<41>(300) && blocks_are_whole_lines<48>(300) &&
             blocks_are_whole_lines<64>(300) && blocks_are_whole_lines<80>(300) &&
             blocks_are_whole_lines<200>(300) && blocks_are_whole_lines<256>(300);
    });
    CHECK(ok);
    // From a plain thread (the shared pool) too.
    CHECK(blocks_are_whole_lines<48>(300));
}
#endif
