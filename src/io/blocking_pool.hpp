// The runtime's side threads for erl::blocking: a bounded pool, started lazily, with one FIFO
// queue of jobs. Internal.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <erl/detail/blocking_job.hpp>

namespace erl::detail {

struct runtime_impl;

class blocking_pool {
  public:
    blocking_pool(runtime_impl& rt, unsigned max_threads);
    // stop().
    ~blocking_pool();
    blocking_pool(const blocking_pool&) = delete;
    blocking_pool& operator=(const blocking_pool&) = delete;

    // Queues a job (its caller and wake signal set). When every thread is busy and the bound
    // allows, starts one more. Throws std::system_error when no thread exists and none can be
    // started, and std::runtime_error after stop(); the job is then not queued.
    void submit(blocking_job* job);

    // Frees the queued jobs without running them and joins the threads (waiting for the jobs
    // they run). Only when no process is left to wait for a job. Idempotent.
    void stop() noexcept;

    unsigned max_threads() const noexcept { return max_threads_; }
    // Jobs queued or running (for runtime::statistics).
    std::size_t jobs() const;

  private:
    void work() noexcept;
    void run_job(blocking_job* job) noexcept;

    runtime_impl& rt_;
    const unsigned max_threads_;
    mutable std::mutex mutex_;
    std::condition_variable has_work_;
    std::deque<blocking_job*> queue_; // oldest first
    std::size_t running_ = 0;
    std::size_t idle_ = 0; // threads waiting for a job
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

} // namespace erl::detail
