// erl::blocking's side pool, and the caller's half: queue the job, wait for its wake signal.
//
// The wake-up path. The pool thread records the result in the job, then moves its state
// running -> finished (a release) and only then pushes a wake_signal to the caller through the
// runtime's own send path (no message: nothing reaches the mailbox). The caller waits like a
// receive that accepts nothing: it looks at the state (an acquire) and, while the job has not
// finished, parks until a signal comes. A push cannot be lost between its look and its parking:
// the scheduler parks a process only while its signal queue is empty. Any other signal (a
// message, a link) only makes it look again; an exit signal unwinds it at once.
#include "io/blocking_pool.hpp"

#include <erl/blocking.hpp>

#include <stdexcept>

#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "signals/signals.hpp"

namespace erl::detail {

blocking_pool::blocking_pool(runtime_impl& rt, unsigned max_threads)
    : rt_(rt), max_threads_(max_threads ? max_threads : 1) {}

blocking_pool::~blocking_pool() {
    stop();
}

void blocking_pool::submit(blocking_job* job) {
    std::unique_lock lock(mutex_);
    if (stopping_) throw std::runtime_error("erl::blocking: the runtime is shutting down");
    // One more thread when the queued jobs (this one included) outnumber the idle threads.
    queue_.push_back(job);
    if (queue_.size() > idle_ && threads_.size() < max_threads_) {
        try {
            threads_.emplace_back([this] { work(); });
        } catch (...) {
            // Out of threads: the job waits for a busy one, unless there is none at all.
            if (threads_.empty()) {
                queue_.pop_back();
                throw;
            }
        }
    }
    lock.unlock();
    has_work_.notify_one();
}

std::size_t blocking_pool::jobs() const {
    std::lock_guard lock(mutex_);
    return queue_.size() + running_;
}

void blocking_pool::stop() noexcept {
    std::deque<blocking_job*> dropped;
    std::vector<std::thread> threads;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        dropped.swap(queue_);
        threads.swap(threads_);
    }
    has_work_.notify_all();
    // Every caller has ended, so every queued job was abandoned: nobody waits for these.
    for (blocking_job* job : dropped)
        job->destroy(job);
    for (auto& t : threads)
        t.join();
}

void blocking_pool::work() noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_;
        has_work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (stopping_) return;
        blocking_job* job = queue_.front();
        queue_.pop_front();
        ++running_;
        lock.unlock();
        run_job(job);
        lock.lock();
        --running_;
    }
}

void blocking_pool::run_job(blocking_job* job) noexcept {
    std::uint8_t s = blocking_job::queued;
    if (!job->state.compare_exchange_strong(s, blocking_job::running, std::memory_order_acq_rel)) {
        job->destroy(job); // the caller died before the job started: skipped
        return;
    }
    job->execute(job);
    // Once finished, the job is the caller's and may be freed at any moment: take what the
    // wake-up needs first.
    const pid caller = job->caller;
    envelope_ptr wake = std::move(job->wake);
    s = blocking_job::running;
    if (!job->state.compare_exchange_strong(s, blocking_job::finished, std::memory_order_acq_rel)) {
        job->destroy(job); // the caller died while the job ran: the result goes nowhere
        return;
    }
    send_signal(rt_, caller, std::move(wake));
}

void run_blocking(blocking_job_ptr& owned) {
    process_control& self = require_process("blocking");
    handle_signals(self); // an exit already decided: start nothing
    blocking_job* job = owned.get();
    job->caller = self.self_pid();
    job->wake = envelope_ptr(new wake_signal());
    self.rt->blocking.submit(job);
    owned.release(); // shared with the pool now; the state says who frees it
    try {
        while (job->state.load(std::memory_order_acquire) != blocking_job::finished)
            wait_signals(self, clock::time_point::max(), false);
    } catch (...) {
        // Killed while waiting. Hand the job to the pool, unless it finished meanwhile.
        std::uint8_t s = job->state.load(std::memory_order_acquire);
        while (s != blocking_job::finished &&
               !job->state.compare_exchange_weak(s, blocking_job::abandoned,
                                                 std::memory_order_acq_rel))
            ;
        if (s == blocking_job::finished) owned.reset(job);
        throw;
    }
    owned.reset(job);
}

} // namespace erl::detail
