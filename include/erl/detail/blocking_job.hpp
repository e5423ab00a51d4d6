// One erl::blocking call as the side pool sees it: the copied function and arguments, the slot
// for the result or the exception, and the state that settles who frees the job. Not for users.
//
// The state moves queued -> running -> finished on the pool thread, or to abandoned when the
// caller is killed first (the caller alone writes abandoned). Whoever moves it last owns the
// job: a finished job belongs to the caller again, an abandoned one to the pool, which frees it
// without running it (still queued) or as soon as it returns (running).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <erl/detail/envelope.hpp>
#include <erl/pid.hpp>

namespace erl::detail {

struct blocking_job {
    enum : std::uint8_t { queued, running, finished, abandoned };
    std::atomic<std::uint8_t> state{queued};
    // Calls the function, records its result or exception and drops the copies; never throws.
    void (*execute)(blocking_job*) noexcept = nullptr;
    void (*destroy)(blocking_job*) noexcept = nullptr;
    pid caller;
    // The signal that wakes the caller, made before the job is queued so that finishing a job
    // cannot fail for want of memory.
    envelope_ptr wake;
    std::exception_ptr error;
};

struct blocking_job_deleter {
    void operator()(blocking_job* j) const noexcept { j->destroy(j); }
};
using blocking_job_ptr = std::unique_ptr<blocking_job, blocking_job_deleter>;

// Queues the job on the calling process's runtime pool and waits until it has finished; `job`
// owns it again then. If the caller is killed meanwhile, the exit propagates and the job is the
// pool's (or already freed). Throws std::system_error when the pool has no thread and cannot
// start one (the job was not queued).
void run_blocking(blocking_job_ptr& job);

// Where the result of a call lives until the caller takes it: nothing for void, the address for
// a reference, the value otherwise.
template <typename R>
struct blocking_result {
    std::optional<R> value;
    template <typename Call>
    void set(Call&& call) {
        value.emplace(std::forward<Call>(call)());
    }
    R take() { return std::move(*value); }
};
template <typename R>
requires std::is_reference_v<R>
struct blocking_result<R> {
    std::remove_reference_t<R>* address = nullptr;
    template <typename Call>
    void set(Call&& call) {
        R r = std::forward<Call>(call)();
        address = std::addressof(r);
    }
    R take() { return static_cast<R>(*address); }
};
template <>
struct blocking_result<void> {
    template <typename Call>
    void set(Call&& call) {
        std::forward<Call>(call)();
    }
    void take() noexcept {}
};

template <typename F, typename... Args>
struct blocking_task final : blocking_job {
    using result_type = std::invoke_result_t<F, Args...>;
    // Dropped on the pool thread as soon as the call returns, as std::thread drops its copies.
    std::optional<std::tuple<F, Args...>> call;
    blocking_result<result_type> result;

    template <typename G, typename... A>
    explicit blocking_task(G&& fn, A&&... args)
        : call(std::in_place, std::forward<G>(fn), std::forward<A>(args)...) {
        execute = &run;
        destroy = &free;
    }

    static void run(blocking_job* job) noexcept {
        auto* self = static_cast<blocking_task*>(job);
        try {
            self->result.set([self]() -> result_type {
                return std::apply(
                    [](auto&&... a) -> result_type {
                        return std::invoke(std::forward<decltype(a)>(a)...);
                    },
                    std::move(*self->call));
            });
        } catch (...) {
            self->error = std::current_exception();
        }
        self->call.reset();
    }
    static void free(blocking_job* job) noexcept { delete static_cast<blocking_task*>(job); }

    result_type take() {
        if (error) std::rethrow_exception(error);
        return result.take();
    }
};

} // namespace erl::detail
