// erl::application: a runtime, a top supervisor, and a thread that turns signals into a stop.
#include <erl/application.hpp>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <optional>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include <erl/link.hpp>
#include <erl/logger.hpp>
#include <erl/message.hpp>
#include <erl/monitor.hpp>
#include <erl/process.hpp>
#include <erl/receive.hpp>

namespace erl {
namespace {

constexpr char stop_byte = 's';
constexpr char quit_byte = 'q';

// The write end of the pipe of the application that handles signals (-1: none).
std::atomic<int> signal_fd{-1};

extern "C" void on_stop_signal(int) {
    const int saved = errno;
    const int fd = signal_fd.load();
    if (fd >= 0) {
        char c = stop_byte;
        [[maybe_unused]] ssize_t n = ::write(fd, &c, 1);
    }
    errno = saved;
}

struct stop_request {};

// Installs the handlers for SIGINT and SIGTERM while alive; restores the old ones after.
class signal_guard {
  public:
    explicit signal_guard(int fd) {
        int expected = -1;
        if (!signal_fd.compare_exchange_strong(expected, fd))
            throw std::logic_error("erl::application: another application handles signals");
        struct sigaction sa {};
        sa.sa_handler = &on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
    }
    ~signal_guard() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
        signal_fd.store(-1);
    }
    signal_guard(const signal_guard&) = delete;
    signal_guard& operator=(const signal_guard&) = delete;

  private:
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
};

void write_byte(int fd, char c) noexcept {
    for (;;) {
        ssize_t n = ::write(fd, &c, 1);
        if (n == 1 || (n < 0 && errno != EINTR)) return; // a full pipe already holds a stop
    }
}

} // namespace

struct application::state {
    std::function<supervisor::start_result()> start;
    application_options options;
    int pipe_fds[2] = {-1, -1};
    exit_reason reason;
    bool requested = false;
};

application::application(std::function<supervisor::start_result()> start,
                         application_options options)
    : state_(std::make_unique<state>()) {
    state_->start = std::move(start);
    state_->options = std::move(options);
    if (::pipe2(state_->pipe_fds, O_CLOEXEC) != 0)
        throw std::runtime_error("erl::application: pipe2 failed");
    // Writers (the signal handler, stop()) must never block.
    ::fcntl(state_->pipe_fds[1], F_SETFL, ::fcntl(state_->pipe_fds[1], F_GETFL) | O_NONBLOCK);
}

application::~application() {
    ::close(state_->pipe_fds[0]);
    ::close(state_->pipe_fds[1]);
}

void application::stop() noexcept {
    write_byte(state_->pipe_fds[1], stop_byte);
}

const exit_reason& application::reason() const noexcept {
    return state_->reason;
}

int application::run() {
    state& s = *state_;
    std::optional<signal_guard> signals;
    if (s.options.handle_signals) signals.emplace(s.pipe_fds[1]);

    runtime rt(s.options.runtime);
    pid app = rt.spawn([&s, &rt] {
        process_flag(trap_exit, true);
        supervisor::start_result r = supervisor::start_result::ignore();
        try {
            r = s.start();
        } catch (const detail::exit_exception&) {
            throw;
        } catch (...) {
            r = supervisor::start_result::error(
                exit_reason::from_exception(std::current_exception()));
        }
        if (!r.is_ok()) {
            s.reason = r.is_ignore() ? exit_reason::normal() : r.reason();
        } else {
            pid top = r.pid();
            ref mon = monitor(top);
            bool done = false;
            while (!done) {
                receive(
                    guard([&](const down_msg& d) { return d.id == mon; },
                          [&](down_msg d) {
                              s.reason = d.reason;
                              done = true;
                          }),
                    [&](stop_request) {
                        if (s.requested) return;
                        s.requested = true;
                        // As OTP's application master: the parent's exit signal makes the
                        // top supervisor stop its tree in order.
                        erl::exit(top, exit_reason::shutdown());
                    },
                    [](exit_msg) {});
            }
        }
        rt.request_shutdown();
    });

    // The watcher: a plain thread that forwards stop bytes to the application's process.
    const int read_fd = s.pipe_fds[0];
    std::atomic<bool> quitting{false};
    std::thread watcher([read_fd, app, &quitting] {
        for (;;) {
            char c = 0;
            ssize_t n = ::read(read_fd, &c, 1);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0 || c == quit_byte || quitting.load()) return;
            send(app, stop_request{});
        }
    });

    rt.wait();
    // Even when the pipe is full (the byte is then dropped) the watcher wakes up and sees the
    // flag.
    quitting.store(true);
    write_byte(s.pipe_fds[1], quit_byte);
    watcher.join();
    // Stops asked for after the end do not carry over to a later run().
    ::fcntl(read_fd, F_SETFL, ::fcntl(read_fd, F_GETFL) | O_NONBLOCK);
    for (char c = 0; ::read(read_fd, &c, 1) > 0;) {
    }
    ::fcntl(read_fd, F_SETFL, ::fcntl(read_fd, F_GETFL) & ~O_NONBLOCK);
    rt.shutdown();
    signals.reset();

    const bool requested = s.requested;
    log_event e;
    e.level = requested || s.reason.is_normal() ? log_level::info : log_level::error;
    e.kind = atom("application");
    e.process = app;
    e.reason = s.reason;
    e.text =
        fmt::format("application exited: {}{}", s.reason, requested ? " (stop requested)" : "");
    log(e);

    if (s.options.exit_code) return s.options.exit_code(s.reason, requested);
    return requested || s.reason.is_normal() ? 0 : 1;
}

} // namespace erl
