#include "scheduler/timer_wheel.hpp"

#include <algorithm>
#include <bit>
#include <utility>

namespace erl::detail {

namespace {
constexpr std::uint64_t low_mask(unsigned bits) noexcept {
    return (std::uint64_t(1) << bits) - 1;
}

// Sorts a list linked through `next` by deadline, keeping the order of equal ones (a merge
// sort: a tick's batch is usually one entry, but may be thousands).
timer_entry* by_deadline(timer_entry* list) noexcept {
    if (!list || !list->next) return list;
    timer_entry* middle = list;
    for (timer_entry* fast = list->next; fast && fast->next; fast = fast->next->next)
        middle = middle->next;
    timer_entry* b = by_deadline(std::exchange(middle->next, nullptr));
    timer_entry* a = by_deadline(list);
    timer_entry* head = nullptr;
    timer_entry** tail = &head;
    while (a && b) {
        timer_entry*& first = b->deadline < a->deadline ? b : a;
        *tail = first;
        tail = &first->next;
        first = first->next;
    }
    *tail = a ? a : b;
    return head;
}
} // namespace

timer_wheel::timer_wheel() noexcept : cur_(tick_of(clock::now())) {}

bool timer_wheel::insert_locked(timer_entry* e, clock::time_point deadline) noexcept {
    e->wheel = this;
    e->deadline = nanoseconds(deadline);
    ++count_;
    std::uint64_t turn = place(e);
    if (turn >= next_tick_) return false;
    publish(turn);
    return true;
}

std::uint64_t timer_wheel::place(timer_entry* e) noexcept {
    std::uint64_t tick = std::max(tick_due(e->deadline), cur_); // already due: at the next look
    std::uint64_t delta = tick - cur_;
    // The lowest level whose 64 slots reach that far. delta < 2^48 (ticks are below 2^47).
    unsigned level =
        delta < slots_per_level ? 0 : (unsigned(std::bit_width(delta)) - 1) / level_bits;
    unsigned shift = level * level_bits;
    unsigned index = unsigned(tick >> shift) & (slots_per_level - 1);
    timer_entry** slot = &slots_[level * slots_per_level + index];
    e->next = *slot;
    if (e->next) e->next->pprev = &e->next;
    e->pprev = slot;
    *slot = e;
    occupied_[level] |= std::uint64_t(1) << index;
    // Level 0 fires at the entry's tick; a higher level cascades at the start of the span its
    // slot stands for, which is after cur_ (delta is at least that level's slot span).
    return tick & ~low_mask(shift);
}

std::uint64_t timer_wheel::next_event() const noexcept {
    std::uint64_t best = no_tick;
    for (unsigned level = 0; level < levels; ++level) {
        std::uint64_t occupied = occupied_[level];
        if (!occupied) continue;
        unsigned shift = level * level_bits;
        // The first slot span at this level that starts at or after cur_ (a span already
        // begun was cascaded when it began), then the first occupied slot from there on, in
        // the wheel's circular order.
        std::uint64_t base = (cur_ + low_mask(shift)) >> shift;
        unsigned ahead =
            unsigned(std::countr_zero(std::rotr(occupied, int(base & (slots_per_level - 1)))));
        best = std::min(best, (base + ahead) << shift);
    }
    return best;
}

void timer_wheel::cascade(unsigned level, std::uint64_t at) noexcept {
    unsigned index = unsigned(at >> (level * level_bits)) & (slots_per_level - 1);
    timer_entry*& slot = slots_[level * slots_per_level + index];
    timer_entry* e = slot;
    if (!e) return;
    slot = nullptr;
    occupied_[level] &= ~(std::uint64_t(1) << index);
    while (e) {
        timer_entry* next = e->next;
        place(e); // due within this span: a lower level (at == cur_)
        e = next;
    }
}

timer_entry* timer_wheel::advance(std::uint64_t now_tick) noexcept {
    while (cur_ <= now_tick) {
        std::uint64_t at = count_ ? next_event() : no_tick;
        if (at > now_tick) {
            cur_ = now_tick + 1; // nothing fires or cascades before then
            return nullptr;
        }
        cur_ = at;
        // The spans that begin at `at`, widest first: their entries move down.
        unsigned top = at == 0 ? levels - 1
                               : std::min(levels - 1, unsigned(std::countr_zero(at)) / level_bits);
        for (unsigned level = top; level > 0; --level)
            cascade(level, at);
        cur_ = at + 1;
        unsigned index = unsigned(at) & (slots_per_level - 1);
        if (timer_entry* due = slots_[index]) {
            slots_[index] = nullptr;
            occupied_[0] &= ~(std::uint64_t(1) << index);
            return by_deadline(due);
        }
    }
    return nullptr;
}

} // namespace erl::detail
