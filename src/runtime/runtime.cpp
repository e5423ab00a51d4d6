#include <erl/runtime.hpp>

#include <algorithm>
#include <thread>

#include "context/overflow.hpp"
#include "context/sanitizers.hpp"
#include "identity/node.hpp"
#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl {
namespace detail {

namespace {
std::vector<runtime_impl*>& runtimes() {
    static std::vector<runtime_impl*> v;
    return v;
}
std::atomic<std::uint32_t> next_creation{1};
// Like Erlang's ten dirty I/O schedulers, a bound for jobs that mostly wait, not compute.
constexpr unsigned default_blocking_threads = 16;

std::size_t default_stack_bytes(const runtime_options& o) {
    if (o.default_stack_size) return o.default_stack_size;
    // std::sort alone used 31 KiB of stack under ASan (runtime-notes §2.2).
    return under_asan ? 256 * 1024 : 64 * 1024;
}
} // namespace

std::mutex& runtimes_mutex() noexcept {
    static std::mutex m;
    return m;
}

runtime_impl* find_runtime_locked(std::uint32_t creation) noexcept {
    for (auto* rt : runtimes())
        if (rt->creation == creation) return rt;
    return nullptr;
}

runtime_impl::runtime_impl(const runtime_options& o)
    : options(o), creation(next_creation.fetch_add(1)), table(o.max_processes),
      stacks(default_stack_bytes(o)),
      blocking(*this, o.blocking_threads ? o.blocking_threads : default_blocking_threads) {
    set_identity(node, creation);
    options.blocking_threads = blocking.max_threads();
    if (options.reductions_per_slice <= 0) options.reductions_per_slice = 4000;
    unsigned n =
        options.schedulers ? options.schedulers : std::max(1u, std::thread::hardware_concurrency());
    options.schedulers = n;
    install_overflow_handler();
    if (options.distribution) remote = dist::make_node_service(*this, *options.distribution);
    monitor_count.resize(n);
    live_on.resize(n);
    stacks_held.resize(n);
    spawned_on_schedulers.resize(n);
    for (unsigned i = 0; i < n; ++i)
        schedulers.push_back(std::make_unique<scheduler>(*this, i));
    std::vector<const std::atomic<std::uint64_t>*> clocks;
    for (auto& s : schedulers)
        clocks.push_back(&s->quiescent);
    table.set_clocks(std::move(clocks));
    {
        std::lock_guard lock(runtimes_mutex());
        if (remote && find_runtime_locked(creation))
            throw std::runtime_error("erl::runtime: distribution: EPMD gave a creation another "
                                     "runtime of this program has; try again");
        runtimes().push_back(this);
    }
    for (auto& s : schedulers)
        s->start();
    if (remote) dist::start_node_service(*this);
}

runtime_impl::~runtime_impl() {
    // Drops the queued jobs (their callers are dead) and joins the running ones. See the
    // comment on `blocking` for why this comes after the schedulers stop.
    blocking.stop();
    {
        std::lock_guard lock(runtimes_mutex());
        std::erase(runtimes(), this);
    }
    drop_all_timers(*this);
}

void runtime_impl::note_if_all_ended() noexcept {
    // Between this scheduler's last change of its live count and the others' counts: of two
    // schedulers that end their last processes at the same time and then look, at least one
    // sees both ends.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!only_services_left()) return;
    std::lock_guard lock(wait_mutex);
    wait_cv.notify_all();
}

void runtime_impl::wake_one_sleeper(scheduler* except) noexcept {
    for (auto& s : schedulers) {
        if (s.get() != except && s->sleeping.load(std::memory_order_relaxed)) {
            s->notify();
            return;
        }
    }
}

} // namespace detail

runtime::runtime(runtime_options options)
    : impl_(std::make_unique<detail::runtime_impl>(options)) {}

runtime::~runtime() {
    shutdown();
}

void runtime::wait() {
    std::unique_lock lock(impl_->wait_mutex);
    impl_->wait_cv.wait(lock,
                        [&] { return impl_->shutdown_requested || impl_->only_services_left(); });
}

bool runtime::wait_for(std::chrono::steady_clock::duration timeout) {
    std::unique_lock lock(impl_->wait_mutex);
    return impl_->wait_cv.wait_for(
        lock, timeout, [&] { return impl_->shutdown_requested || impl_->only_services_left(); });
}

void runtime::request_shutdown() noexcept {
    std::lock_guard lock(impl_->wait_mutex);
    impl_->shutdown_requested = true;
    impl_->wait_cv.notify_all();
}

void runtime::shutdown() {
    auto& rt = *impl_;
    if (rt.threads_exit.load()) return;
    if (auto* me = detail::current_process(); me && me->rt == &rt)
        throw std::logic_error("erl::runtime::shutdown called from one of its own processes "
                               "(it would wait for itself): use request_shutdown()");
    rt.stopping.store(true);
    // Kill whatever is alive; processes spawned meanwhile by dying ones are refused above, but
    // loop until the table is quiet in case one slipped in before `stopping` was seen.
    while (rt.live_count() != 0) {
        std::size_t n = rt.table.capacity();
        for (std::uint32_t i = 0; i < n; ++i) {
            detail::process_control* p = rt.table.at(i);
            if (!p || !p->try_ref()) continue;
            pid id = p->self_pid();
            p->unref();
            detail::send_signal(
                rt, id,
                detail::envelope_ptr(new detail::exit_signal(pid(), exit_reason::kill(), false)));
        }
        std::unique_lock lock(rt.wait_mutex);
        rt.wait_cv.wait_for(lock, std::chrono::milliseconds(100),
                            [&] { return rt.live_count() == 0; });
    }
    rt.threads_exit.store(true);
    for (auto& s : rt.schedulers) {
        s->notify();
    }
    for (auto& s : rt.schedulers)
        s->join();
    {
        std::lock_guard lock(rt.wait_mutex);
        rt.shutdown_requested = true;
        rt.wait_cv.notify_all();
    }
}

unsigned runtime::schedulers() const noexcept {
    return unsigned(impl_->schedulers.size());
}

atom runtime::node() const noexcept {
    return impl_->node;
}

runtime_statistics runtime::statistics() const {
    auto& rt = *impl_;
    runtime_statistics s;
    std::size_t live = rt.live_count(), services = rt.system_live.load();
    s.processes = live > services ? live - services : 0;
    s.links = std::size_t(std::max<std::int64_t>(0, rt.link_count.load()));
    s.monitors = std::size_t(std::max<std::int64_t>(0, rt.monitor_count.sum()));
    s.pending_timers = detail::pending_timers(rt);
    {
        std::lock_guard lock(rt.names_mutex);
        s.registered_names = rt.names.size();
    }
    s.blocking_jobs = rt.blocking.jobs();
    s.spawned_total = rt.spawned_total.load() + std::size_t(rt.spawned_on_schedulers.sum());
    s.stacks = std::size_t(std::max<std::int64_t>(0, rt.stacks_held.sum()));
    return s;
}

} // namespace erl
