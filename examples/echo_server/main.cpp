// echo_server: a TCP echo server written like an OTP application. Every connection is served
// by its own process, in direct style (read, then write back); a crash or a reset loses only
// that connection.
//   echo_server [--port N] [--host H] [--schedulers S]
//
//   echo (rest_for_one)
//   ├── connections (simple_one_for_one)  one temporary worker per connection
//   └── acceptor                          listens, accepts, hands each socket to a new worker
//
// Prints `listening on H:N` once ready; SIGINT or SIGTERM stops the tree in order and exits 0.
#include <erl/application.hpp>
#include <erl/erl.hpp>
#include <erl/supervisor.hpp>
#include <erl/tcp.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace erl::literals;
namespace sup = erl::supervisor;
namespace tcp = erl::tcp;

namespace {

struct config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
    unsigned schedulers = 0;
};

// One connection: echo until the peer closes. A reset is an ordinary end for an echo server.
void serve(tcp::socket s) {
    std::vector<char> buffer(16 * 1024); // one buffer for the connection's life
    try {
        for (;;) {
            std::size_t n = s.read_some(buffer);
            s.write({buffer.data(), n});
        }
    } catch (const erl::io_error& e) {
        if (e.is_closed() || e.reason() == "econnreset"_a) return;
        throw;
    }
}

void acceptor(config cfg) {
    tcp::listener l =
        tcp::listen(cfg.host, cfg.port, {.backlog = 4096, .socket = {.nodelay = true}});
    fmt::print("listening on {}:{}\n", cfg.host, l.local().port());
    std::fflush(stdout);
    for (;;) {
        tcp::socket s = l.accept();
        auto worker = sup::start_child("connections"_a, s);
        if (worker) {
            s.controlling_process(worker.pid());
        } else {
            s.close();
        }
    }
}

// Ten thousand connections need more than the usual 1024 descriptors.
void raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

config parse(int argc, char** argv) {
    config cfg;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                fmt::print(stderr, "echo_server: {} needs a value\n", a);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--port") {
            cfg.port = std::uint16_t(std::stoul(value()));
        } else if (a == "--host") {
            cfg.host = value();
        } else if (a == "--schedulers") {
            cfg.schedulers = unsigned(std::stoul(value()));
        } else if (a == "--help" || a == "-h") {
            fmt::print("usage: echo_server [--port N] [--host H] [--schedulers S]\n"
                       "  --port N         TCP port (default 7000; 0 picks a free one)\n"
                       "  --host H         address to listen on (default 127.0.0.1)\n"
                       "  --schedulers S   scheduler threads (default: one per core)\n");
            std::exit(0);
        } else {
            fmt::print(stderr, "usage: echo_server [--port N] [--host H] [--schedulers S]\n");
            std::exit(2);
        }
    }
    return cfg;
}

} // namespace

int main(int argc, char** argv) {
    config cfg = parse(argc, argv);
    raise_fd_limit();
    // Keep the log to what matters for a server: crashes of the tree itself.
    erl::set_log_handler([](const erl::log_event& e) {
        if (e.level < erl::log_level::warning) return;
        fmt::print(stderr, "{}\n", e.text);
    });
    erl::application app(
        [cfg] {
            sup::child_spec connection = sup::dynamic_worker<tcp::socket>("connection"_a, serve);
            connection.restart = sup::restart_type::temporary;
            connection.shutdown = sup::shutdown_policy::brutal_kill();
            sup::flags pool;
            pool.strategy = sup::strategy::simple_one_for_one;
            sup::flags top;
            top.strategy = sup::strategy::rest_for_one;
            top.intensity = 5;
            top.period = 10s;
            // The pool is registered under its id, so the acceptor can find it by name.
            auto connections = sup::supervisor_spec("connections"_a, pool, {connection});
            connections.start = [pool, connection] {
                return sup::start_link("connections"_a, pool, {connection});
            };
            return sup::start_link("echo"_a, top,
                                   {connections, sup::worker("acceptor"_a, acceptor, cfg)});
        },
        {.runtime = {.schedulers = cfg.schedulers}});
    return app.run();
}
