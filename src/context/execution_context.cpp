#include "context/execution_context.hpp"

#include <cxxabi.h>

namespace erl::detail {

// __cxa_get_globals is declared const, so a caller may keep its result across a switch; the
// empty asm makes the address opaque, and noinline keeps that from being undone.
__attribute__((noinline)) eh_state* thread_eh_state() noexcept {
    auto* p = reinterpret_cast<eh_state*>(abi::__cxa_get_globals());
    asm volatile("" : "+r"(p));
    return p;
}

} // namespace erl::detail
