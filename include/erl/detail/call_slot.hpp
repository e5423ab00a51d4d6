// The rendezvous of one call from C++ (see erl/gen.hpp): whether the caller still waits, and
// what reply type it expects; shared by the caller and whoever may reply. Internal.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include <erl/detail/envelope.hpp>

namespace erl::detail {

// Counted by hand rather than by std::shared_ptr: a call makes its slot with both of its first
// owners (the caller and the request) at once, so creating them costs no atomic instruction, and
// the caller, usually the last owner, frees it with a load instead of a decrement.
struct call_slot {
    enum : std::uint8_t { waiting, replied, abandoned };
    static constexpr std::uint32_t no_index = ~std::uint32_t(0);
    std::atomic<std::uint8_t> state{waiting};
    // The call's monitor, as two records (src/signals/call_monitors.cpp): one in the server's
    // list of calls that monitor it, one in the caller's list of call monitors it holds; each
    // side finds its record through the block, by index, without a look-up. A side whose other
    // owner has gone (the request message, the caller's pending_call) while its record remains
    // lets the record hold that owner (the *_hold flag) and release it with the record.
    std::uint8_t server_hold = 0; // the server's thread only
    std::uint8_t caller_hold = 0; // the caller's thread only
    std::atomic<std::uint32_t> refs;
    // Position in the server's list: written by the server's thread only (atomic because a
    // replier on another thread reads it to learn that it is not the server).
    std::atomic<std::uint32_t> server_index{no_index};
    std::uint32_t caller_index = no_index; // position in the caller's list; the caller's thread
    type_key reply_type = nullptr;         // what the caller expects
    std::string_view reply_type_name;
    // Frees the block that holds this slot (a call's request lives in the same allocation).
    void (*free)(call_slot*) noexcept;

    call_slot(std::uint32_t owners, void (*f)(call_slot*) noexcept) noexcept
        : refs(owners), free(f) {}
    call_slot(const call_slot&) = delete;
    call_slot& operator=(const call_slot&) = delete;

    // True when the replier may send: the caller has not given up.
    bool claim() noexcept {
        std::uint8_t w = waiting;
        return state.compare_exchange_strong(w, replied, std::memory_order_acq_rel);
    }
    bool abandon() noexcept {
        std::uint8_t w = waiting;
        return state.compare_exchange_strong(w, abandoned, std::memory_order_acq_rel);
    }

    // A slot on its own (a request that never reached a server).
    static call_slot* make_alone(std::uint32_t owners) {
        return new call_slot(owners, [](call_slot* s) noexcept { delete s; });
    }
};

// One owner of a call_slot.
class slot_ref {
  public:
    slot_ref() = default;
    slot_ref(std::nullptr_t) noexcept {} // NOLINT
    // Takes over one of the owners the slot was made with (no count change).
    static slot_ref adopt(call_slot* s) noexcept {
        slot_ref r;
        r.p_ = s;
        return r;
    }
    // Gives up the pointer without releasing the owner it stands for (someone else now holds
    // that owner: see call_slot's *_hold flags).
    call_slot* detach() noexcept { return std::exchange(p_, nullptr); }
    // Releases one owner of `s` (the one a detach() kept).
    static void drop_owner(call_slot* s) noexcept { adopt(s); }
    slot_ref(const slot_ref& o) noexcept : p_(o.p_) {
        if (p_) p_->refs.fetch_add(1, std::memory_order_relaxed);
    }
    slot_ref(slot_ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    slot_ref& operator=(slot_ref o) noexcept {
        std::swap(p_, o.p_);
        return *this;
    }
    ~slot_ref() { release(); }

    void reset() noexcept {
        release();
        p_ = nullptr;
    }
    call_slot* get() const noexcept { return p_; }
    call_slot* operator->() const noexcept { return p_; }
    call_slot& operator*() const noexcept { return *p_; }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    friend bool operator==(const slot_ref& a, std::nullptr_t) noexcept { return !a.p_; }
    friend bool operator==(const slot_ref& a, const slot_ref& b) noexcept { return a.p_ == b.p_; }

  private:
    void release() noexcept {
        if (!p_) return;
        // A sole owner needs no read-modify-write: nobody else holds the slot, so nobody can
        // copy it any more. The acquire pairs with the other owners' releasing decrements.
        if (p_->refs.load(std::memory_order_acquire) == 1 ||
            p_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            p_->free(p_);
    }

    call_slot* p_ = nullptr;
};

} // namespace erl::detail
