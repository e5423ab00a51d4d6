// Processes: creation, the entry trampoline, ending, and the calls a process makes on itself.
#include <erl/logger.hpp>
#include <erl/process.hpp>
#include <erl/receive.hpp>
#include <erl/ref.hpp>

#include <boost/context/detail/fcontext.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>

#include "process/current.hpp"
#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "scheduler/scheduler.hpp"
#include "signals/signals.hpp"

namespace erl {
namespace detail {

namespace {
[[noreturn, gnu::cold, gnu::noinline]] void throw_not_in_process(const char* operation) {
    throw not_in_process(operation);
}
// The process this thread runs: only for the ERLCPP_READS_THREAD functions below, which read
// the thread_local once, first thing, and never after anything that may suspend.
inline process_control* running_here() noexcept {
    scheduler* s = tl_scheduler;
    return s ? s->running : nullptr;
}
inline process_control& require_here(const char* operation) {
    process_control* p = running_here();
    if (!p) [[unlikely]]
        throw_not_in_process(operation);
    return *p;
}
} // namespace

ERLCPP_READS_THREAD process_control* current_process() noexcept {
    return running_here();
}

ERLCPP_READS_THREAD process_control& require_process(const char* operation) {
    return require_here(operation);
}

message_list& messages_of(process_control& p) noexcept {
    return p.messages;
}

node_identity current_node() noexcept {
    process_control* p = current_process();
    if (!p) return {atoms::nonode_nohost, 0};
    return {p->rt->node, p->rt->creation};
}

namespace {
inline pid pid_of(const process_control& p) noexcept {
    return pid(p.rt->node, p.number, p.serial.load(std::memory_order_relaxed), p.rt->creation);
}
} // namespace

pid process_control::self_pid() const noexcept {
    return pid_of(*this);
}

void process_control::unref() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) last_unref(current_scheduler());
}

void process_control::last_unref(scheduler* here) noexcept {
    rt->table.release(this, here && &here->rt == rt ? &here->slots : nullptr);
}

namespace {

// A spawned process's function waits in a staging block (a message-cache block, or the heap
// when large or over-aligned) until the process first runs; the closure follows this header.
struct staged_closure {
    void (*construct)(void* where, void* source);
    std::uint32_t size;  // of the closure
    std::uint32_t align; // of the closure, at least the header's
    std::uint32_t block; // bytes allocated
    bool nothrow_move;
    std::size_t stack_size; // requested; 0: the runtime's default
};

constexpr std::size_t staged_offset(std::size_t align) noexcept {
    return (sizeof(staged_closure) + align - 1) & ~(align - 1);
}

constexpr bool staged_in_cache(std::size_t align) noexcept {
    return align <= __STDCPP_DEFAULT_NEW_ALIGNMENT__;
}

// A staging block comes from (and goes back to) the scheduler's message cache directly when the
// caller knows its scheduler; otherwise through allocate_message/free_message.
void* allocate_staged(scheduler* here, std::size_t bytes) {
    if constexpr (!under_asan) {
        std::size_t cls = message_cache::class_of(bytes);
        if (here && cls < message_cache::classes) {
            if (void* block = here->messages.take(cls)) return block;
        }
    }
    return allocate_message(bytes);
}

void free_staged(void* block, scheduler* here = nullptr) noexcept {
    auto* h = static_cast<staged_closure*>(block);
    if (!staged_in_cache(h->align)) {
        ::operator delete(h, std::align_val_t(h->align));
        return;
    }
    if constexpr (!under_asan) {
        std::size_t cls = message_cache::class_of(h->block);
        if (here && cls < message_cache::classes && here->messages.give(cls, h)) return;
    }
    free_message(h, h->block);
}

// Whether a spawned function waits for the first run in its control block (the receive
// timer's bytes, unused until then) rather than in a staging block: small, aligned no more than
// 8, movable without throwing (start_fresh moves it to the stack), and for the default stack
// size (a staging block's header keeps any other).
constexpr bool stages_in_control_block(const closure_ops& ops,
                                       const spawn_options& options) noexcept {
    return ops.nothrow_move && ops.size <= inline_staged_closure::capacity &&
           ops.align <= inline_staged_closure::alignment && options.stack_size == 0;
}

// Stages the function in the control block (p->closure; no closure_block). On failure the
// slot goes back, and its reset makes those bytes the receive timer again.
void stage_in_control_block(process_control* p, scheduler* here, const closure_ops& ops) {
    p->staged_here.construct = ops.construct;
    try {
        ops.construct(p->staged_here.bytes, ops.source);
    } catch (...) {
        p->unref(here);
        throw;
    }
    p->closure = p->staged_here.bytes;
    p->closure_block = nullptr;
}

// Stages the function in a staging block (p->closure, p->closure_block).
void stage_in_staging_block(process_control* p, scheduler* here, const spawn_options& options,
                            const closure_ops& ops) {
    std::size_t align = std::max(ops.align, alignof(staged_closure));
    std::size_t bytes = staged_offset(align) + ops.size;
    staged_closure* h;
    try {
        void* block = staged_in_cache(align) ? allocate_staged(here, bytes)
                                             : ::operator new(bytes, std::align_val_t(align));
        h = ::new (block)
            staged_closure{ops.construct,        std::uint32_t(ops.size), std::uint32_t(align),
                           std::uint32_t(bytes), ops.nothrow_move,        options.stack_size};
    } catch (...) {
        p->unref(here);
        throw;
    }
    void* closure_at = reinterpret_cast<char*>(h) + staged_offset(align);
    try {
        ops.construct(closure_at, ops.source);
    } catch (...) {
        free_staged(h, here);
        p->unref(here);
        throw;
    }
    p->closure = closure_at;
    p->closure_block = h;
}

// The function is over (or never ran): its closure goes, and the staging block with it.
// `here`: the calling thread's scheduler, when the caller knows it.
void end_closure(process_control& p, scheduler* here = nullptr) noexcept {
    p.destroy(p.closure);
    if (void* block = std::exchange(p.closure_block, nullptr)) free_staged(block, here);
}

void log_crash(process_control& p, const exit_reason& reason) {
    log_event e;
    e.level = log_level::error;
    e.kind = atom("crash_report");
    e.process = p.self_pid();
    if (const char* name = p.name_text.load(std::memory_order_relaxed)) e.name = atom(name);
    e.reason = reason;
    if (e.name != atom()) {
        e.text = fmt::format("process {} ({}) exited with reason {}", e.process, e.name, reason);
    } else {
        e.text = fmt::format("process {} exited with reason {}", e.process, reason);
    }
    log(e);
}

// Everything with a destructor lives here, so that it is gone before the final switch.
void run_body(process_control& p) {
    exit_reason reason;
    bool crashed = false;
    bool hibernating = false;
    try {
        // A kill may have arrived before the process first ran.
        if (p.exiting || p.inbox.load(std::memory_order_relaxed) != inbox_state::empty)
            handle_signals(p);
        p.run(p.closure);
    } catch (hibernate_exception&) {
        hibernating = true;
    } catch (exit_exception& e) {
        reason = std::move(e.reason);
    } catch (...) {
        reason = exit_reason::from_exception(std::current_exception());
        crashed = true;
    }
    if (hibernating) {
        // The old function (or the previous continuation) is over; the new one runs when the
        // process wakes, on a fresh stack.
        end_closure(p);
        std::unique_ptr<pending_continuation> next = std::move(p.next_continuation);
        p.closure = std::exchange(next->closure, nullptr);
        p.run = next->run;
        p.destroy = next->destroy;
        if (!p.exiting) {
            p.hibernated = true;
            return;
        }
        // An exit was decided while unwinding: the continuation never runs.
        p.destroy(p.closure);
        p.closure = nullptr;
        p.destroy = [](void*) noexcept {};
    }
    p.next_continuation.reset(); // a hibernation that user code caught and did not finish
    // An exit decided by a signal wins over whatever the unwinding code threw instead; it is in
    // p.exit_with already. Otherwise p.exit_with is still `normal` (an exit_with is only ever set
    // with `exiting`, and scheduler::finish resets it), so a normal end writes nothing.
    if (p.exiting) {
        crashed = false;
    } else if (!reason.is_normal()) {
        p.exit_with = std::move(reason);
    }
    p.exiting = true;
    p.terminating = true;
    end_closure(p);
    if (crashed) log_crash(p, p.exit_with);
    terminate_process(p, p.exit_with);
}

void process_entry(bctx::transfer_t t) noexcept {
    scheduler* s = process_started(t);
    process_control* p = s->running;
    run_body(*p);
    // This stack's frames are over either way.
    p->why = p->hibernated ? switch_reason::hibernate : switch_reason::exit;
    leave_for_good(*p);
}

} // namespace

namespace {
// Whoever switched to `self` left its context in t: the scheduler loop (t.data is the
// scheduler, handoff_from null) or a process handing off (its switch is completed here).
scheduler* take_over(execution_context& self, bctx::transfer_t t, bool first) noexcept {
    auto* s = static_cast<scheduler*>(t.data);
    process_control* prev = s->handoff_from;
    execution_context& from = prev ? prev->ctx : s->ctx;
    if (first) {
        first_entry(from);
    } else {
        after_switch(self, &from);
    }
    if (prev) {
        s->handoff_from = nullptr;
        s->complete_switch(prev, t.fctx);
    } else {
        s->ctx.fctx = t.fctx;
    }
    return s;
}
} // namespace

// Always inline: GCC stopped inlining it into wait_signals when the hand-off grew by an atomic
// store (set_scheduler), and the call cost pingpong ~13 ns a message.
[[gnu::always_inline]] inline void switch_out_inline(process_control& p,
                                                     switch_reason why) noexcept {
    p.why = why;
    scheduler* s = p.sched;
    s->count_slice(p);
    bctx::transfer_t t;
    if (process_control* next = s->take_handoff()) {
        // Straight to the next ready process: one switch instead of two, and no pass through
        // the loop. The next process completes this one's switch-out (take_over).
        s->handoff_from = &p;
        before_switch(p.ctx, next->ctx);
        swap_eh_state(s->thread_eh(), p.ctx, next->ctx);
        t = jump_to(next->ctx.fctx, s);
    } else {
        before_switch(p.ctx, s->ctx);
        swap_eh_state(s->thread_eh(), p.ctx, s->ctx);
        t = jump_to(s->ctx.fctx, &p);
    }
    take_over(p.ctx, t, false);
}

void switch_out(process_control& p, switch_reason why) noexcept {
    switch_out_inline(p, why);
}

scheduler* process_started(bctx::transfer_t t) noexcept {
    auto* s = static_cast<scheduler*>(t.data);
    return take_over(s->running->ctx, t, true);
}

void leave_for_good(process_control& p) noexcept {
    // The process may have moved: return to whichever scheduler runs it now.
    scheduler* s = p.sched;
    s->count_slice(p);
    // An ended process switches straight to the next ready one, which releases it
    // (complete_switch); a hibernating one goes through the loop. (Not under TSan: with a
    // fiber destroyed by the fiber it handed off to, TSan reported races between accesses made
    // under one mutex, which cannot race; its fiber bookkeeping is not made for this order.)
#if !ERLCPP_TSAN
    if (p.why == switch_reason::exit) {
        if (process_control* next = s->take_handoff()) {
            s->handoff_from = &p;
            before_switch(p.ctx, next->ctx, true);
            swap_eh_state(s->thread_eh(), p.ctx, next->ctx);
            jump_to(next->ctx.fctx, s);
            __builtin_unreachable();
        }
    }
#endif
    before_switch(p.ctx, s->ctx, true);
    swap_eh_state(s->thread_eh(), p.ctx, s->ctx);
    jump_to(s->ctx.fctx, &p);
    __builtin_unreachable();
}

namespace {
// Where a process's frames begin: a little below the top of its stack, by a different number of
// cache lines for neighbouring process numbers. Stacks are page-aligned slots, so without this
// the hot top lines of every process's stack fall in the same set of the L1 cache (and in a few
// of L2's), which holds only a dozen of them: with hundreds of processes taking turns (a ring,
// many senders to one) they would evict one another at every switch (ring of 503: 62 -> 48 ns
// per pass; 1,000 senders to one: 40 -> 33 ns per message). 32 colours, at most 1,984 bytes:
// the top page still holds a waiting process's first frames (64 colours did not: 4.4 -> 5.2
// KB per idle process).
constexpr std::uintptr_t stack_colours = 32;
std::uintptr_t stack_top(const process_control& p) noexcept {
    return reinterpret_cast<std::uintptr_t>(p.stack.high()) - (p.number % stack_colours) * 64;
}
} // namespace

void restart_context(process_control& p) noexcept {
    auto top = stack_top(p) & ~std::uintptr_t(63);
    std::size_t usable = top - reinterpret_cast<std::uintptr_t>(p.stack.low);
    p.ctx.fctx = bctx::make_fcontext(reinterpret_cast<void*>(top), usable, &process_entry);
    start_with_default_fp_modes(p.ctx.fctx);
    p.deepest = reinterpret_cast<const char*>(top);
#if ERLCPP_TSAN
    p.ctx.tsan_fiber = __tsan_create_fiber(0);
#endif
}

bool start_fresh(process_control& p, scheduler& s) noexcept {
    auto* h = static_cast<staged_closure*>(p.closure_block); // null: staged in the block
    try {
        p.stack = p.rt->stacks.acquire(h ? h->stack_size : 0, &s.stacks);
    } catch (...) {
        return false;
    }
    p.canary_guarded = p.stack.guard == guard_kind::canary;
    p.rt->stacks_held.add(s.index, 1);
    // The closure moves to the top of the stack when it can do so without throwing (the staging
    // block goes back at once, or the control block's bytes become the receive timer again);
    // the first frame goes below it.
    auto frame_top = stack_top(p);
    if (!h) {
        frame_top = (frame_top - inline_staged_closure::capacity) &
                    ~std::uintptr_t(inline_staged_closure::alignment - 1);
        auto* at = reinterpret_cast<void*>(frame_top);
        p.staged_here.construct(at, p.closure);
        p.destroy(p.closure);
        std::construct_at(&p.wait_timer);
        p.closure = at;
    } else if (h->nothrow_move) {
        frame_top = (frame_top - h->size) & ~(std::uintptr_t(h->align) - 1);
        auto* at = reinterpret_cast<void*>(frame_top);
        h->construct(at, p.closure);
        end_closure(p, &s);
        p.closure = at;
    }
    frame_top &= ~std::uintptr_t(63);
    std::size_t usable = frame_top - reinterpret_cast<std::uintptr_t>(p.stack.low);
    p.ctx.fctx = bctx::make_fcontext(reinterpret_cast<void*>(frame_top), usable, &process_entry);
    start_with_default_fp_modes(p.ctx.fctx);
#if ERLCPP_ASAN
    p.ctx.stack_bottom = p.stack.low;
    p.ctx.stack_size = p.stack.size;
#endif
#if ERLCPP_TSAN
    p.ctx.tsan_fiber = __tsan_create_fiber(0);
#endif
    p.deepest = reinterpret_cast<const char*>(frame_top);
    p.fresh = false;
    return true;
}

void fail_start(process_control& p) noexcept {
    // Like a process that crashed before its first instruction: its links and monitors learn
    // system_limit (Erlang's reason when a process cannot be had), the others nothing.
    exit_reason reason = exit_reason::killed();
    try {
        reason = exit_reason(atom("system_limit"));
    } catch (...) {
    }
    p.fresh = false;
    absorb_signals(p); // links and monitors made before now must hear of the exit
    p.exiting = true;
    p.terminating = true;
    p.exit_with = reason;
    end_closure(p);
    try {
        log_crash(p, reason);
    } catch (...) {
    }
    terminate_process(p, reason);
}

[[noreturn]] void hibernate_raw(void* continuation, void (*run)(void*),
                                void (*destroy)(void*) noexcept) {
    process_control* p = current_process();
    if (!p) {
        destroy(continuation);
        throw not_in_process("hibernate_with");
    }
    p->next_continuation.reset(); // an earlier hibernate was caught
    if (p->exiting) {
        destroy(continuation);
        throw exit_exception{p->exit_with};
    }
    try {
        p->next_continuation = std::make_unique<pending_continuation>(continuation, run, destroy);
    } catch (...) {
        destroy(continuation);
        throw;
    }
    throw hibernate_exception{};
}

namespace {
// What a spawn costs the spawner's time slice, in reductions (a send or a receive costs one).
// A process spawned here runs after its spawner's slice (spawned processes run depth first:
// scheduler.hpp), so the slice decides how many new processes wait at once: with one reduction
// per spawn a loop of spawns made 4,000 per slice, whose control blocks, staged functions and
// messages (~1.7 MB) no longer fit the core's caches by the time they ran (spawn + exit with
// the message to the parent: 133-137 ns per process, 128-132 with 32 reductions).
constexpr std::int32_t spawn_reductions = 32;

// spawn_process's work, for a caller that read the thread's scheduler first thing (it is
// inlined into two ERLCPP_READS_THREAD functions): false when no slot could be had yet
// (nothing was done). The only call that may suspend is the last.
[[gnu::always_inline]] inline bool spawn_from(scheduler* const thread_sched, runtime_impl* rt,
                                              const spawn_options& options, const closure_ops& ops,
                                              pid& spawned) {
    process_control* parent = thread_sched ? thread_sched->running : nullptr;
    if (!rt) {
        if (!parent) throw not_in_process("spawn");
        rt = parent->rt;
    }
    if (rt->stopping.load(std::memory_order_acquire))
        throw std::runtime_error("erl::spawn: the runtime is shutting down");
    scheduler* here = thread_sched && &thread_sched->rt == rt ? thread_sched : nullptr;

    // Erlang's +P. Spawns racing on several schedulers may overshoot by a few; the table's
    // fixed size is the hard bound.
    if (here ? !here->may_spawn() : rt->live_count() >= rt->options.max_processes)
        throw std::length_error("erl::spawn: system_limit (too many processes)");
    process_control* p = rt->table.allocate(here ? &here->slots : nullptr);
    if (!p) [[unlikely]]
        return false;
    p->rt = rt;
    // The process gets its stack when it first runs (start_fresh): one that is spawned and
    // queued holds none, so a burst of spawns (a tree of processes, a worker per request) runs
    // on the few warm stacks given back by the ones before instead of touching a fresh slot
    // each. Until then the function waits in the control block when small enough (a store
    // instead of a staging block taken now and given back at the first run), else in a
    // staging block.
    if (stages_in_control_block(ops, options)) {
        stage_in_control_block(p, here, ops);
    } else {
        stage_in_staging_block(p, here, options, ops);
    }
    p->ctx = execution_context{};
    p->fresh = true;
    p->run = ops.run;
    p->destroy = ops.destroy;
    set_scheduler(p, here ? here : &rt->pick_scheduler());

    p->system = options.system;
    if (options.system) rt->system_live.fetch_add(1, std::memory_order_relaxed);
    if (here) {
        rt->live_on.add(here->index, 1);
        rt->spawned_on_schedulers.add(here->index, 1);
    } else {
        rt->live_outside.fetch_add(1, std::memory_order_relaxed);
        rt->spawned_total.fetch_add(1, std::memory_order_relaxed);
    }
    if (options.link && parent && parent->rt == rt) link_new_child(*parent, *p);
    pid id = pid_of(*p);
    if (here) {
        here->ready_spawned(p, parent);
    } else {
        make_ready(p, thread_sched);
    }
    spawned = id;
    if (parent) {
        parent->reductions -= spawn_reductions - 1;
        count_reduction(*parent);
    }
    return true;
}

// Every slot of the table is in use or still waits out its grace period (process_table.hpp),
// which the calling process's own time slice may be what holds up: it gives the slice up (a
// plain thread waits a moment), so that the slots of processes that have ended can be had.
[[gnu::noinline]] void wait_for_slots() {
    if (process_control* p = current_process()) {
        yield_spent(*p);
    } else {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
}
ERLCPP_READS_THREAD bool spawn_again(runtime_impl* rt, const spawn_options& options,
                                     const closure_ops& ops, pid& spawned) {
    return spawn_from(tl_scheduler, rt, options, ops, spawned);
}

[[gnu::noinline]] pid spawn_after_waiting(runtime_impl* rt, const spawn_options& options,
                                          const closure_ops& ops) {
    // Grace periods end within a time slice of every scheduler: a scheduler that runs one
    // process for longer than this without a call into the runtime keeps the slots waiting.
    auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
    pid id;
    do {
        wait_for_slots();
        if (spawn_again(rt, options, ops, id)) return id;
    } while (std::chrono::steady_clock::now() < give_up);
    throw std::length_error("erl::spawn: system_limit (too many processes)");
}
} // namespace

ERLCPP_READS_THREAD pid spawn_process(runtime_impl* rt, const spawn_options& options,
                                      const closure_ops& ops) {
    pid id;
    if (spawn_from(tl_scheduler, rt, options, ops, id)) [[likely]]
        return id;
    return spawn_after_waiting(rt, options, ops);
}

void absorb_signals(process_control& p) noexcept {
    envelope* e = p.take_all();
    p.arrivals.store(0, std::memory_order_relaxed);
    while (e) {
        envelope* next = e->next;
        if (e->kind() == signal_kind::message) {
            p.messages.push_back(e);
        } else {
            try {
                handle_signal(p, e);
            } catch (...) {
                // Out of memory while answering a signal: that answer is lost, nothing else.
            }
        }
        e = next;
    }
}

namespace {
[[gnu::noinline]] void handle_signals_slow(process_control& p) {
    if (p.exiting) {
        // The process is unwinding (or its code swallowed the exit): signals wait for its end.
        if (p.terminating) return;
        throw exit_exception{p.exit_with};
    }
    absorb_signals(p);
    if (p.exiting) throw exit_exception{p.exit_with};
}
// Nothing to do unless a signal is queued or an exit was decided: checked inline.
inline void handle_signals_inline(process_control& p) {
    if (!p.exiting && p.inbox.load(std::memory_order_relaxed) == inbox_state::empty) return;
    handle_signals_slow(p);
}
} // namespace

void handle_signals(process_control& p) {
    handle_signals_inline(p);
}

ERLCPP_READS_THREAD receive_scope begin_receive() {
    process_control& p = require_here("receive");
    handle_signals_inline(p);
    return {&p, &p.messages};
}

void wait_signals(process_control& p, clock::time_point deadline, bool has_deadline) {
    if (has_deadline) {
        p.wait_timer.process = &p;
        p.sched->timers.insert(&p.wait_timer, deadline);
    }
    p.in_receive_wait = true;
    switch_out_inline(p, switch_reason::wait);
    if (has_deadline && p.wait_timer.wheel) p.wait_timer.wheel->remove(&p.wait_timer);
    try {
        handle_signals_inline(p);
    } catch (...) {
        p.in_receive_wait = false;
        throw;
    }
    p.in_receive_wait = false;
}

void count_reduction(process_control& p) {
    if (--p.reductions > 0) return;
    yield_spent(p);
}

void yield_spent(process_control& p) {
    switch_out_inline(p, switch_reason::yield);
    handle_signals_inline(p);
}

} // namespace detail

ERLCPP_READS_THREAD pid self() {
    return detail::pid_of(detail::require_here("self"));
}

void exit(exit_reason reason) {
    auto& p = detail::require_process("exit");
    if (!p.exiting) {
        p.exiting = true;
        p.exit_with = reason;
    }
    throw detail::exit_exception{std::move(reason)};
}

void yield() {
    auto& p = detail::require_process("yield");
    detail::switch_out(p, detail::switch_reason::yield);
    detail::handle_signals(p);
}

unsigned scheduler_id() noexcept {
    detail::scheduler* s = detail::current_scheduler();
    return s ? s->index + 1 : 0;
}

bool is_alive(const pid& id) {
    bool alive = false;
    auto check = [&](detail::runtime_impl& rt) {
        if (auto* p = rt.table.acquire(id)) {
            alive = p->inbox.load(std::memory_order_acquire) != detail::inbox_state::closed;
            p->unref();
        }
    };
    detail::process_control* me = detail::current_process();
    if (me && me->rt->owns(id)) {
        check(*me->rt);
    } else if (id.is_local()) {
        detail::with_runtime(id.creation(), check);
    }
    return alive;
}

mailbox_mark mark_mailbox() {
    auto& p = detail::require_process("mark_mailbox");
    detail::handle_signals(p);
    return mailbox_mark{p.messages.set_mark()};
}

ref make_ref() {
    static std::atomic<std::uint64_t> counter{
        std::uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) << 8};
    std::uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
    auto node = detail::current_node();
    return ref(node.name, node.creation,
               {std::uint32_t(n & 0x3ffff), std::uint32_t(n >> 18), std::uint32_t(n >> 50)});
}

} // namespace erl
