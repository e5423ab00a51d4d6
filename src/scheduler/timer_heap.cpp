#include "scheduler/timer_heap.hpp"

namespace erl::detail {

bool timer_heap::insert(timer_entry* e) {
    std::lock_guard lock(mutex_);
    e->heap = this;
    heap_.push_back(e);
    e->heap_index = heap_.size() - 1;
    sift_up(e->heap_index);
    bool earliest = heap_.front() == e;
    publish_next();
    return earliest;
}

bool timer_heap::remove(timer_entry* e) noexcept {
    std::lock_guard lock(mutex_);
    if (e->heap != this || e->heap_index == timer_entry::not_queued) return false;
    remove_at(e->heap_index);
    publish_next();
    return true;
}

void timer_heap::remove_at(std::size_t i) noexcept {
    timer_entry* gone = heap_[i];
    timer_entry* last = heap_.back();
    heap_.pop_back();
    gone->heap_index = timer_entry::not_queued;
    if (i < heap_.size()) {
        place(i, last);
        sift_up(i);
        sift_down(last->heap_index);
    }
}

void timer_heap::sift_up(std::size_t i) noexcept {
    timer_entry* e = heap_[i];
    while (i > 0) {
        std::size_t parent = (i - 1) / 2;
        if (heap_[parent]->deadline <= e->deadline) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, e);
}

void timer_heap::sift_down(std::size_t i) noexcept {
    timer_entry* e = heap_[i];
    std::size_t n = heap_.size();
    for (;;) {
        std::size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && heap_[child + 1]->deadline < heap_[child]->deadline) ++child;
        if (e->deadline <= heap_[child]->deadline) break;
        place(i, heap_[child]);
        i = child;
    }
    place(i, e);
}

} // namespace erl::detail
