// Message memory (src/scheduler/message_cache.hpp): blocks from the schedulers' caches.
#include <catch2/catch.hpp>

#include <erl/erl.hpp>

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

// (Under ASan every message is its own allocation.)
#if !ERLCPP_ASAN
TEST_CASE("message blocks never share a cache line", "[message][memory]") {
    // Blocks of more than 32 bytes (every message: an envelope alone is 40) start on a cache
    // line and fill whole lines, so blocks reused on two schedulers never share one.
    erl::runtime rt({.schedulers = 1});
    bool ok = false;
    rt.run([&] {
        ok = blocks_are_whole_lines<41>(300) && blocks_are_whole_lines<48>(300) &&
             blocks_are_whole_lines<64>(300) && blocks_are_whole_lines<80>(300) &&
             blocks_are_whole_lines<200>(300) && blocks_are_whole_lines<256>(300);
    });
    CHECK(ok);
    // From a plain thread (the shared pool) too.
    CHECK(blocks_are_whole_lines<48>(300));
}
#endif
