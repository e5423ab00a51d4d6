// The I/O layer's core: one epoll instance per runtime, the table of I/O handles (one per open
// socket) and the readiness protocol between processes that wait on a handle and the scheduler
// that polls. Internal.
//
// Sockets are registered once, edge-triggered, for input and output. An edge sets the handle's
// `ready` flag for that direction and wakes the processes waiting on it; a process clears the
// flag before each attempt, so an edge that arrives while it tries is never lost (it retries
// instead of waiting). Waiting processes are woken with a wake signal through their inbox, which
// is race-free against parking, whichever thread polls.
//
// Who polls: a scheduler that goes to sleep takes the poll token and sleeps in epoll_wait (with
// its next timer as the timeout) instead of on its condition variable; busy schedulers poll
// without blocking now and then while handles are open. A runtime with no handles never polls.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <sys/types.h>

#include <erl/pid.hpp>
#include <erl/tcp.hpp>

namespace erl::detail {

struct runtime_impl;
struct process_control;
class scheduler;

enum io_direction : int { io_in = 0, io_out = 1 };

// Receives at most `limit` bytes from fd into a string of exactly the size received, through
// the calling scheduler's scratch buffer (no zero-filled 16 KiB string per read). Returns what
// recv returned (data is set only when it is > 0).
ssize_t receive_into_string(int fd, std::size_t limit, std::string& data);

// One open socket. Handles live in chunks that are never freed while the runtime lives, so an
// event or a stale socket value can always lock one and check `generation`.
struct io_handle {
    std::mutex lock;
    std::uint32_t index = 0;
    std::uint32_t generation = 1; // bumped when the slot is freed: old values stop matching
    bool in_use = false;
    bool listening = false;
    bool closing = false; // close decided; the fd goes when no operation uses it any more
    bool peer_closed = false;
    int fd = -1;
    int users = 0; // operations inside a system call on fd right now
    pid owner;     // the controlling process
    std::array<bool, 2> ready{};
    std::array<bool, 2> busy{}; // an exact read / a whole write holds the direction
    std::array<std::vector<process_control*>, 2> waiters;
    int active = 0; // 0 passive; -1 {active, true}; n > 0 messages left ({active, once} is 1)
    std::size_t read_chunk = 16 * 1024;
    std::string pending;         // bytes read and not handed out yet (a timed-out exact read)
    tcp::socket_options inherit; // a listener's options for what it accepts; a socket's own
    io_handle* next_free = nullptr;

    std::uint64_t id() const noexcept { return (std::uint64_t(generation) << 32) | index; }
};

class io_poller {
  public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t chunk_bits = 10;
    static constexpr std::size_t chunk_size = std::size_t(1) << chunk_bits;
    static constexpr std::size_t max_chunks = 4096; // 4 M handles

    explicit io_poller(runtime_impl& rt);
    ~io_poller();
    io_poller(const io_poller&) = delete;
    io_poller& operator=(const io_poller&) = delete;

    // Takes `fd` (non-blocking, close-on-exec) into a new handle owned by `owner` and registers
    // it. On failure closes fd and throws io_error.
    io_handle& open(int fd, bool listening, const pid& owner);
    // The handle an id names, or nullptr; the caller locks it and checks `generation`.
    io_handle* find(std::uint64_t id) noexcept;
    // With h.lock held: starts closing h; the fd goes now, or when the last user leaves.
    void close_locked(io_handle& h) noexcept;
    // With h.lock held: an operation leaves the fd (finishes a close that waited for it).
    void leave_locked(io_handle& h) noexcept;
    // With h.lock held: wakes the processes waiting on `dir`.
    void wake_locked(io_handle& h, io_direction dir) noexcept;
    // With h.lock held and h in active mode: reads what is there and sends it to the owner as
    // messages, until EAGAIN, the end of the stream or the active count runs out.
    void active_read_locked(io_handle& h) noexcept;

    std::size_t open_handles() const noexcept { return open_.load(std::memory_order_relaxed); }

    // --- the schedulers' side ---
    // Whether the calling scheduler may poll (only one polls at a time).
    bool try_take_token() noexcept { return !token_.exchange(true, std::memory_order_acquire); }
    void release_token() noexcept { token_.store(false, std::memory_order_release); }
    // With the token: waits for events until `deadline` (now: do not block; time_point::max():
    // no limit) or interrupt(), and handles them. Returns the number of handle events.
    int poll(clock::time_point deadline) noexcept;
    // Makes a blocking poll() return.
    void interrupt() noexcept;

  private:
    void handle_event(std::uint64_t id, std::uint32_t events) noexcept;
    void free_locked(io_handle& h) noexcept;

    runtime_impl& rt_;
    int epoll_fd_ = -1;
    int wake_fd_ = -1;
    std::atomic<bool> token_{false};
    std::atomic<std::size_t> open_{0};
    std::mutex table_mutex_; // chunk growth and the free list
    std::array<std::atomic<io_handle*>, max_chunks> chunks_{};
    std::size_t chunk_count_ = 0;
    io_handle* free_ = nullptr;
};

} // namespace erl::detail
