// The unit every signal travels in: messages and the runtime's own signals (exit, link,
// monitor...) share one intrusive envelope, so they share one queue and keep their order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace erl::detail {

// A per-type key that costs nothing to compare (no RTTI, no string compares).
using type_key = const void*;
template <typename T>
struct type_key_holder {
    static constexpr char key = 0;
};
template <typename T>
constexpr type_key type_key_of() noexcept {
    return &type_key_holder<std::remove_cvref_t<T>>::key;
}

enum class signal_kind : std::uint8_t {
    message,   // a user message (message_envelope<T>)
    exit,      // exit signal: from a link or from exit/2
    link,      // link request
    unlink,    // unlink request
    monitor,   // monitor request
    demonitor, // monitor removal
    down,      // a down_msg: a message, after the receiver forgets the monitor
    info,      // process_info request: answered by the process itself
    wake,      // carries nothing: makes a waiting process look again (I/O readiness, a job's end)
    adopt,     // hands the process a resource it now owns (a socket from controlling_process)
    call,      // a monitor request and a message in one signal: a gen call (call_signal.hpp)
};

struct envelope {
    envelope* next = nullptr;
    envelope* prev = nullptr;
    type_key type = nullptr;
    void (*destroy)(envelope*) noexcept = nullptr;
    signal_kind kind = signal_kind::message;
};

// Message memory: blocks cached per scheduler thread, with a shared pool behind the caches for
// other threads and bursts (src/scheduler/message_cache.hpp); a block may be freed on any thread.
// Sizes up to message_granule * message_classes bytes are cached, in classes of message_granule
// bytes.
inline constexpr std::size_t message_granule = 16;
inline constexpr std::size_t message_classes = 16;
constexpr std::size_t message_class_of(std::size_t size) noexcept {
    return size == 0 ? 0 : (size - 1) / message_granule;
}

// One entry point per size class (each instantiated in message_cache.cpp), so the class is a
// constant where a block's size is: `size` (at most the class's block size) is only used
// under ASan, where every message is its own allocation.
template <std::size_t Class>
void* allocate_message_block(std::size_t size);
template <std::size_t Class>
void free_message_block(void* block) noexcept;

// A block of `Size` bytes, freed with free_message_sized<Size>.
template <std::size_t Size>
void* allocate_message_sized() {
    if constexpr (message_class_of(Size) < message_classes) {
        return allocate_message_block<message_class_of(Size)>(Size);
    } else {
        return ::operator new(Size);
    }
}
template <std::size_t Size>
void free_message_sized(void* block) noexcept {
    if constexpr (message_class_of(Size) < message_classes) {
        free_message_block<message_class_of(Size)>(block);
    } else {
        ::operator delete(block);
    }
}

// The same for a size known only at run time.
void* allocate_message(std::size_t size);
void free_message(void* block, std::size_t size) noexcept;

// A T in message memory when its alignment allows (plain new otherwise); freed with
// delete_in_message_memory, on any thread.
template <typename T>
inline constexpr bool fits_message_memory = alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;

template <typename T, typename... Args>
T* new_in_message_memory(Args&&... args) {
    if constexpr (fits_message_memory<T>) {
        void* block = allocate_message_sized<sizeof(T)>();
        try {
            return ::new (block) T(std::forward<Args>(args)...);
        } catch (...) {
            free_message_sized<sizeof(T)>(block);
            throw;
        }
    } else {
        return new T(std::forward<Args>(args)...);
    }
}

template <typename T>
void delete_in_message_memory(T* p) noexcept {
    if constexpr (fits_message_memory<T>) {
        p->~T();
        free_message_sized<sizeof(T)>(p);
    } else {
        delete p;
    }
}

template <typename T>
struct message_envelope final : envelope {
    T value;

    template <typename... Args>
    explicit message_envelope(std::in_place_t, Args&&... args)
        : value(std::forward<Args>(args)...) {
        type = type_key_of<T>();
        destroy = &destroy_self;
    }
    static void destroy_self(envelope* e) noexcept {
        delete_in_message_memory(static_cast<message_envelope*>(e));
    }
};

struct envelope_deleter {
    void operator()(envelope* e) const noexcept { e->destroy(e); }
};
using envelope_ptr = std::unique_ptr<envelope, envelope_deleter>;

template <typename T, typename... Args>
envelope_ptr make_message(Args&&... args) {
    return envelope_ptr(
        new_in_message_memory<message_envelope<T>>(std::in_place, std::forward<Args>(args)...));
}

} // namespace erl::detail
