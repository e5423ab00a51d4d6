// A process's private message queue: the messages taken out of its signal queue, in arrival
// order, that no receive has consumed yet. Owned and touched by the process alone; only its
// length may be read by others, as a hint (senders use it to pace themselves: delivery.cpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include <erl/detail/envelope.hpp>

namespace erl::detail {

class message_list {
  public:
    envelope* front() const noexcept { return head_; }
    envelope* back() const noexcept { return tail_; }
    std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }
    bool empty() const noexcept { return size() == 0; }

    void push_back(envelope* e) noexcept {
        e->next = nullptr;
        e->prev = tail_;
        if (tail_) {
            tail_->next = e;
        } else {
            head_ = e;
        }
        tail_ = e;
        set_size(size() + 1);
    }

    void remove(envelope* e) noexcept {
        // A receive mark that names the removed message moves to its predecessor, so messages
        // after the mark stay exactly the ones that arrived after it.
        if (mark_set_ && mark_ == e) mark_ = e->prev;
        if (e->prev) {
            e->prev->next = e->next;
        } else {
            head_ = e->next;
        }
        if (e->next) {
            e->next->prev = e->prev;
        } else {
            tail_ = e->prev;
        }
        e->next = e->prev = nullptr;
        set_size(size() - 1);
    }

    // The receive mark (the BEAM's recv_mark): remembers the current end of the queue so that
    // a later receive can skip every message that was already there.
    std::uint64_t set_mark() noexcept {
        mark_ = tail_;
        mark_set_ = true;
        return ++mark_id_;
    }
    // First message after mark `id`, or the front when that mark has been replaced. Id 0 names
    // no mark (set_mark's ids start at 1): a receive without a mark costs no test of the mark.
    envelope* first_after_mark(std::uint64_t id) const noexcept {
        if (id == 0 || !mark_set_ || id != mark_id_) return head_;
        return mark_ ? mark_->next : head_;
    }

    // Unlinks everything; the caller owns the returned chain (linked through next).
    envelope* release_all() noexcept {
        envelope* h = head_;
        head_ = tail_ = nullptr;
        set_size(0);
        mark_ = nullptr;
        mark_set_ = false;
        return h;
    }

  private:
    // Only the owner writes: a plain load and store, no read-modify-write.
    void set_size(std::size_t n) noexcept { size_.store(n, std::memory_order_relaxed); }

    // What every push and remove touches first (remove looks at mark_set_), the rest of the
    // receive mark after it: a process control block keeps the front part in one line.
    envelope* head_ = nullptr;
    envelope* tail_ = nullptr;
    std::atomic<std::size_t> size_{0};
    bool mark_set_ = false;
    envelope* mark_ = nullptr;
    std::uint64_t mark_id_ = 0;
};

} // namespace erl::detail
