// Switching between a scheduler thread and a process, on Boost.Context's raw fcontext API, with
// the bookkeeping every switch needs: sanitizer fiber annotations and the C++ runtime's
// per-thread exception state (runtime-notes.md §3 and §4.3).
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "context/sanitizers.hpp"

// Our own switch routine where we have one (execution_context.cpp), Boost's elsewhere.
#if defined(__x86_64__) && defined(__ELF__) && !defined(__ILP32__)
#define ERLCPP_OWN_JUMP 1
#else
#define ERLCPP_OWN_JUMP 0
#endif

namespace erl::detail {

namespace bctx = boost::context::detail;

#if ERLCPP_OWN_JUMP
extern "C" bctx::transfer_t erlcpp_jump_fcontext(bctx::fcontext_t to, void* vp);
#endif

// make_fcontext saves the floating-point control words of the thread that makes the context;
// a process starts with the defaults instead, wherever and whenever it first runs.
inline void start_with_default_fp_modes([[maybe_unused]] bctx::fcontext_t fresh) noexcept {
#if ERLCPP_OWN_JUMP
    // The frame starts with MXCSR (32 bits) and the x87 control word (16 bits).
    auto* frame = static_cast<unsigned char*>(fresh);
    const std::uint32_t mxcsr = 0x1f80;  // all exceptions masked, round to nearest
    const std::uint16_t x87_cw = 0x037f; // the same, extended precision
    std::memcpy(frame, &mxcsr, sizeof mxcsr);
    std::memcpy(frame + 4, &x87_cw, sizeof x87_cw);
#endif
}

// Switches to `to`, handing it `vp`; returns when something switches back, with the context it
// left and what it handed over. Every switch of erlcpp's goes through here.
inline bctx::transfer_t jump_to(bctx::fcontext_t to, void* vp) noexcept {
#if ERLCPP_OWN_JUMP
    return erlcpp_jump_fcontext(to, vp);
#else
    return bctx::jump_fcontext(to, vp);
#endif
}

// What __cxa_get_globals() points at (Itanium C++ ABI: libstdc++ and libc++abi alike).
struct eh_state {
    void* caught = nullptr;
    unsigned int uncaught = 0;
};

// The calling thread's exception globals. Out of line and opaque to the optimiser: the address
// is per thread and a process may move between threads across any switch.
eh_state* thread_eh_state() noexcept;

// One side of a switch: a process, or a scheduler thread's own stack.
struct execution_context {
    bctx::fcontext_t fctx = nullptr;
    eh_state eh;
    // ASan: this context's fake stack and stack bounds. TSan: its fiber. (Only in those builds:
    // every process control block carries one of these.)
#if ERLCPP_ASAN
    void* asan_fake_stack = nullptr;
    const void* stack_bottom = nullptr;
    std::size_t stack_size = 0;
#endif
#if ERLCPP_TSAN
    void* tsan_fiber = nullptr;
#endif
};

// Called on `from`'s stack right before jumping to `to`. `from_ends` frees from's fake stack.
inline void before_switch(execution_context& from, const execution_context& to,
                          bool from_ends = false) noexcept {
#if ERLCPP_ASAN
    __sanitizer_start_switch_fiber(from_ends ? nullptr : &from.asan_fake_stack, to.stack_bottom,
                                   to.stack_size);
#else
    (void)from;
    (void)from_ends;
#endif
#if ERLCPP_TSAN
    __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
    (void)to;
}

// Called on `self`'s stack right after it was switched back in; learns the bounds of the
// context that switched to it into `from`.
inline void after_switch(execution_context& self, execution_context* from) noexcept {
#if ERLCPP_ASAN
    const void* bottom = nullptr;
    std::size_t size = 0;
    __sanitizer_finish_switch_fiber(self.asan_fake_stack, &bottom, &size);
    if (from) {
        from->stack_bottom = bottom;
        from->stack_size = size;
    }
#else
    (void)self;
    (void)from;
#endif
}

// A new process's first act: there is no fake stack of its own yet.
inline void first_entry(execution_context& from) noexcept {
#if ERLCPP_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &from.stack_bottom, &from.stack_size);
#else
    (void)from;
#endif
}

// Installs `incoming`'s exception state in the thread's globals `g` (the scheduler thread's own
// thread_eh_state(), looked up once) and keeps what was there in `outgoing`.
inline void swap_eh_state(eh_state* g, execution_context& outgoing,
                          const execution_context& incoming) noexcept {
    outgoing.eh = *g;
    *g = incoming.eh;
}

} // namespace erl::detail
