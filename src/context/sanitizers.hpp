// Which sanitizers this build runs under, and their fiber annotations (runtime-notes.md §3).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define ERLCPP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ERLCPP_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define ERLCPP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ERLCPP_TSAN 1
#endif
#endif

#if ERLCPP_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif
#if ERLCPP_TSAN
#include <sanitizer/tsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define ERLCPP_VALGRIND 1
#endif

namespace erl::detail {
#if ERLCPP_ASAN
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
#if ERLCPP_TSAN
inline constexpr bool under_tsan = true;
#else
inline constexpr bool under_tsan = false;
#endif
} // namespace erl::detail
