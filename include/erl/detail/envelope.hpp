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

struct envelope;

// What the envelopes of one kind of content share: the message type a receive matches (null for
// the runtime's own signals) and how an envelope is freed. A static object per kind of
// envelope; 16-aligned, so that an envelope keeps its signal_kind in the low bits of the
// pointer to it and its header is three words: 24 bytes, so a message of up to 8 bytes fits
// a 32-byte block (a one-word `kind` and `destroy` beside `type` took 40, and every message a
// 64-byte block: a parent collecting a million `done` messages touched 64 MB instead of 32).
struct alignas(16) envelope_ops {
    type_key type;
    void (*destroy)(envelope*) noexcept;
};

struct envelope {
    envelope* next = nullptr;
    envelope* prev = nullptr;

    envelope(const envelope_ops& ops, signal_kind k) noexcept
        : tag_(reinterpret_cast<std::uintptr_t>(&ops) | std::uintptr_t(k)) {}
    envelope(const envelope&) = delete;
    envelope& operator=(const envelope&) = delete;

    signal_kind kind() const noexcept { return signal_kind(tag_ & kind_mask); }
    void set_kind(signal_kind k) noexcept { tag_ = (tag_ & ~kind_mask) | std::uintptr_t(k); }
    const envelope_ops& ops() const noexcept {
        return *reinterpret_cast<const envelope_ops*>(tag_ & ~kind_mask);
    }
    // Another way of freeing it (an envelope inside a bigger block); the kind stays.
    void set_ops(const envelope_ops& ops) noexcept {
        tag_ = reinterpret_cast<std::uintptr_t>(&ops) | (tag_ & kind_mask);
    }
    type_key type() const noexcept { return ops().type; }
    // Frees the envelope (and what it carries).
    void destroy() noexcept { ops().destroy(this); }

  private:
    static constexpr std::uintptr_t kind_mask = 15;
    static_assert(alignof(envelope_ops) > kind_mask);
    std::uintptr_t tag_;
};
static_assert(sizeof(envelope) == 3 * sizeof(void*));

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
        : envelope(ops, signal_kind::message), value(std::forward<Args>(args)...) {}
    static void destroy_self(envelope* e) noexcept {
        delete_in_message_memory(static_cast<message_envelope*>(e));
    }
    static constexpr envelope_ops ops{type_key_of<T>(), &destroy_self};
};

struct envelope_deleter {
    void operator()(envelope* e) const noexcept { e->destroy(); }
};
using envelope_ptr = std::unique_ptr<envelope, envelope_deleter>;

template <typename T, typename... Args>
envelope_ptr make_message(Args&&... args) {
    return envelope_ptr(
        new_in_message_memory<message_envelope<T>>(std::in_place, std::forward<Args>(args)...));
}

} // namespace erl::detail
