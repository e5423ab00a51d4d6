// send_after / cancel_timer on top of the schedulers' timer heaps.
#include <erl/timer.hpp>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "scheduler/scheduler.hpp"

namespace erl {
namespace detail {

namespace {

ref start_timer_in(runtime_impl& rt, const pid& to, clock::duration delay, envelope_ptr msg) {
    auto* e = new delivery_timer;
    e->what = timer_entry::action::deliver;
    e->deadline = clock::now() + delay;
    e->dest = to;
    e->message = std::move(msg);
    ref fresh = make_ref(); // unique words; the runtime's identity makes it cancellable anywhere
    e->id = ref(rt.node, rt.creation, fresh.words());
    if (process_control* target = rt.table.acquire(to)) {
        target->timers_to_me.fetch_add(1, std::memory_order_relaxed);
        target->unref();
    }
    scheduler* here = current_scheduler();
    scheduler& owner = here && &here->rt == &rt ? *here : *rt.schedulers.front();
    {
        std::lock_guard lock(rt.timers_mutex);
        rt.timers_by_ref.emplace(e->id, e);
        rt.timers_by_dest[to].insert(e->id);
        // Inserting under the registry lock keeps cancel_timer from seeing a half-made timer.
        if (owner.timers.insert(e) && &owner != here) owner.notify();
    }
    return e->id;
}

} // namespace

ref start_timer(const pid& to, clock::duration delay, envelope_ptr msg) {
    process_control* self = current_process();
    if (self) return start_timer_in(*self->rt, to, delay, std::move(msg));
    // From a plain thread: the timer lives in the destination's runtime.
    ref id;
    bool found = with_runtime(to.creation(), [&](runtime_impl& rt) {
        id = start_timer_in(rt, to, delay, std::move(msg));
    });
    if (!found) return make_ref(); // nobody to deliver to: a timer that is already over
    return id;
}

void runtime_impl::forget_timer(const delivery_timer& e) noexcept {
    timers_by_ref.erase(e.id);
    if (auto d = timers_by_dest.find(e.dest); d != timers_by_dest.end()) {
        d->second.erase(e.id);
        if (d->second.empty()) timers_by_dest.erase(d);
    }
}

bool cancel_timer_in(runtime_impl& rt, const ref& id) {
    std::lock_guard lock(rt.timers_mutex);
    auto it = rt.timers_by_ref.find(id);
    if (it == rt.timers_by_ref.end()) return false;
    delivery_timer* e = it->second;
    if (!e->heap->remove(e)) return false; // fired: the scheduler delivers and frees it
    rt.forget_timer(*e);
    delete e;
    return true;
}

void runtime_impl::cancel_timers_to(const pid& dest) noexcept {
    std::vector<ref> ids;
    {
        std::lock_guard lock(timers_mutex);
        auto it = timers_by_dest.find(dest);
        if (it == timers_by_dest.end()) return;
        ids.assign(it->second.begin(), it->second.end());
    }
    for (auto& id : ids)
        cancel_timer_in(*this, id);
}

} // namespace detail

bool cancel_timer(const ref& timer) {
    detail::process_control* self = detail::current_process();
    if (self && self->rt->creation == timer.creation())
        return detail::cancel_timer_in(*self->rt, timer);
    bool cancelled = false;
    detail::with_runtime(timer.creation(), [&](detail::runtime_impl& rt) {
        cancelled = detail::cancel_timer_in(rt, timer);
    });
    return cancelled;
}

} // namespace erl
