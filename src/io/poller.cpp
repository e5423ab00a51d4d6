#include "io/poller.hpp"

#include <erl/tcp.hpp>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <system_error>

#include "io/io_errors.hpp"
#include "process/process_control.hpp"
#include "runtime/runtime_impl.hpp"
#include "scheduler/scheduler.hpp"
#include "signals/signals.hpp"

namespace erl::detail {

namespace {
constexpr std::uint64_t wake_id = 0; // handle ids never are 0: generations start at 1
constexpr int max_events = 128;

template <typename T>
void send_to_owner(runtime_impl& rt, const pid& owner, T message) noexcept {
    try {
        send_signal(rt, owner, make_message<T>(std::move(message)));
    } catch (...) {
        // Out of memory: the owner misses this message; the socket state stays consistent.
    }
}
} // namespace

ssize_t receive_into_string(int fd, std::size_t limit, std::string& data) {
    scheduler* s = current_scheduler();
    std::vector<char> local;
    std::vector<char>& scratch = s ? s->io_scratch : local;
    if (scratch.size() < limit) scratch.resize(std::max<std::size_t>(limit, 64 * 1024));
    ssize_t n = ::recv(fd, scratch.data(), limit, 0);
    if (n > 0) data.assign(scratch.data(), std::size_t(n));
    return n;
}

io_poller::io_poller(runtime_impl& rt) : rt_(rt) {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        int e = errno;
        ::close(epoll_fd_);
        throw std::system_error(e, std::generic_category(), "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = wake_id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) < 0) {
        int e = errno;
        ::close(wake_fd_);
        ::close(epoll_fd_);
        throw std::system_error(e, std::generic_category(), "epoll_ctl");
    }
}

io_poller::~io_poller() {
    // Every process has ended (their sockets closed with them); what is left belonged to no one
    // who could still use it.
    for (std::size_t c = 0; c < chunk_count_; ++c) {
        io_handle* chunk = chunks_[c].load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < chunk_size; ++i)
            if (chunk[i].in_use && chunk[i].fd >= 0) ::close(chunk[i].fd);
        delete[] chunk;
    }
    ::close(wake_fd_);
    ::close(epoll_fd_);
}

io_handle& io_poller::open(int fd, bool listening, const pid& owner) {
    io_handle* h = nullptr;
    {
        std::lock_guard lock(table_mutex_);
        if (!free_) {
            if (chunk_count_ == max_chunks) {
                ::close(fd);
                throw io_error(std::error_code(EMFILE, std::generic_category()),
                               "erl::tcp: too many open sockets in this runtime");
            }
            auto* chunk = new io_handle[chunk_size];
            for (std::size_t i = chunk_size; i-- > 0;) {
                chunk[i].index = std::uint32_t((chunk_count_ << chunk_bits) | i);
                chunk[i].next_free = free_;
                free_ = &chunk[i];
            }
            chunks_[chunk_count_].store(chunk, std::memory_order_release);
            ++chunk_count_;
        }
        h = free_;
        free_ = h->next_free;
    }
    std::lock_guard lock(h->lock);
    h->next_free = nullptr;
    h->in_use = true;
    h->listening = listening;
    h->closing = false;
    h->peer_closed = false;
    h->fd = fd;
    h->users = 0;
    h->owner = owner;
    h->ready = {true, true};
    h->busy = {false, false};
    h->active = 0;
    h->pending.clear();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = h->id();
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        h->closing = true;
        free_locked(*h);
        throw io_error(std::error_code(e, std::generic_category()), "erl::tcp: epoll_ctl");
    }
    open_.fetch_add(1, std::memory_order_relaxed);
    return *h;
}

io_handle* io_poller::find(std::uint64_t id) noexcept {
    auto index = std::uint32_t(id);
    std::size_t c = index >> chunk_bits;
    if (c >= max_chunks) return nullptr;
    io_handle* chunk = chunks_[c].load(std::memory_order_acquire);
    return chunk ? &chunk[index & (chunk_size - 1)] : nullptr;
}

void io_poller::close_locked(io_handle& h) noexcept {
    if (!h.in_use || h.closing) return;
    h.closing = true;
    if (h.users == 0) free_locked(h);
}

void io_poller::leave_locked(io_handle& h) noexcept {
    --h.users;
    if (h.closing && h.users == 0 && h.in_use) free_locked(h);
}

void io_poller::free_locked(io_handle& h) noexcept {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, h.fd, nullptr);
    ::close(h.fd);
    h.fd = -1;
    // Waiters wake, find the generation changed and report `closed`.
    wake_locked(h, io_in);
    wake_locked(h, io_out);
    h.pending.clear();
    h.pending.shrink_to_fit();
    h.owner = pid();
    h.in_use = false;
    if (++h.generation == 0) h.generation = 1;
    open_.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lock(table_mutex_);
    h.next_free = free_;
    free_ = &h;
}

void io_poller::wake_locked(io_handle& h, io_direction dir) noexcept {
    for (process_control* p : h.waiters[dir])
        wake_process(*p);
    h.waiters[dir].clear();
}

void io_poller::active_read_locked(io_handle& h) noexcept {
    const tcp::socket self(io_handle_ref(rt_.creation, h.id()));
    while (h.active != 0 && !h.closing) {
        std::string data;
        if (!h.pending.empty()) {
            data = std::move(h.pending);
            h.pending.clear();
        } else {
            ssize_t n;
            try {
                n = receive_into_string(h.fd, h.read_chunk, data);
            } catch (...) {
                return; // out of memory: the data waits in the kernel for the next edge
            }
            if (n < 0) {
                int e = errno;
                if (e == EINTR) continue;
                if (e == EAGAIN || e == EWOULDBLOCK) {
                    h.ready[io_in] = false;
                    return;
                }
                std::error_code code(e, std::generic_category());
                send_to_owner(rt_, h.owner, tcp_error{self, code, io_reason(code)});
                send_to_owner(rt_, h.owner, tcp_closed{self});
                close_locked(h);
                return;
            }
            if (n == 0) {
                // As gen_tcp with exit_on_close (its default): the socket closes with the stream.
                h.peer_closed = true;
                send_to_owner(rt_, h.owner, tcp_closed{self});
                close_locked(h);
                return;
            }
        }
        send_to_owner(rt_, h.owner, tcp_data{self, std::move(data)});
        if (h.active > 0 && --h.active == 0) send_to_owner(rt_, h.owner, tcp_passive{self});
    }
}

void io_poller::handle_event(std::uint64_t id, std::uint32_t events) noexcept {
    io_handle* h = find(id);
    if (!h) return;
    std::lock_guard lock(h->lock);
    if (!h->in_use || h->id() != id) return; // closed since: a stale event
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        h->ready[io_in] = true;
        wake_locked(*h, io_in);
        if (h->active != 0 && !h->listening) active_read_locked(*h);
    }
    if (h->in_use && h->id() == id && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))) {
        h->ready[io_out] = true;
        wake_locked(*h, io_out);
    }
}

int io_poller::poll(clock::time_point deadline) noexcept {
    epoll_event events[max_events];
    int n;
    for (;;) {
        timespec ts{};
        timespec* tsp = &ts;
        if (deadline == clock::time_point::max()) {
            tsp = nullptr;
        } else {
            auto left = deadline - clock::now();
            if (left.count() > 0) {
                auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
                ts.tv_sec = time_t(ns / 1'000'000'000);
                ts.tv_nsec = long(ns % 1'000'000'000);
            }
        }
        n = ::epoll_pwait2(epoll_fd_, events, max_events, tsp, nullptr);
        if (n < 0 && errno == ENOSYS) { // kernels before 5.11: millisecond resolution
            int ms = -1;
            if (tsp)
                ms = int(std::min<long long>(ts.tv_sec * 1000 + (ts.tv_nsec + 999'999) / 1'000'000,
                                             1 << 30));
            n = ::epoll_wait(epoll_fd_, events, max_events, ms);
        }
        if (n >= 0 || errno != EINTR) break;
    }
    int handled = 0;
    for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == wake_id) {
            std::uint64_t count;
            [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
            continue;
        }
        handle_event(events[i].data.u64, events[i].events);
        ++handled;
    }
    return handled;
}

void io_poller::interrupt() noexcept {
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(wake_fd_, &one, sizeof one);
}

} // namespace erl::detail
