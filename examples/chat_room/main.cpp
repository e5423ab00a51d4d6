// chat_room: a line-based chat server. Each connection is a process that waits, in one
// receive, both for its socket's data (active mode: data arrives as messages) and for lines the
// room broadcasts; the room is one more process that knows the members and watches them with
// monitors, so a member that vanishes (closed, reset, crashed) is announced and forgotten.
//   chat_room [--port N] [--host H]
// Try it: `nc 127.0.0.1 7001` in two terminals. The first line you type is your name.
//
//   chat (rest_for_one)
//   ├── room                               registered as `room`
//   ├── members (simple_one_for_one)       one temporary worker per connection
//   └── acceptor
#include <erl/application.hpp>
#include <erl/erl.hpp>
#include <erl/supervisor.hpp>
#include <erl/tcp.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

using namespace std::chrono_literals;
using namespace erl::literals;
namespace sup = erl::supervisor;
namespace tcp = erl::tcp;

namespace {

// What members and the room say to each other.
struct join {
    erl::pid member;
    std::string name;
};
struct said {
    std::string name;
    std::string text;
};
struct line { // to a member: write this to your socket
    std::string text;
};

void room() {
    erl::register_name("room"_a, erl::self());
    std::map<erl::pid, std::string> members;
    auto broadcast = [&](const std::string& text) {
        for (auto& [member, name] : members)
            erl::send(member, line{text});
    };
    for (;;) {
        erl::receive(
            [&](join j) {
                erl::monitor(j.member);
                broadcast(fmt::format("* {} joined\n", j.name));
                members[j.member] = j.name;
                erl::send(j.member, line{fmt::format("* {} here\n", members.size())});
            },
            [&](said s) { broadcast(fmt::format("{}: {}\n", s.name, s.text)); },
            [&](const erl::down_msg& d) {
                auto it = members.find(d.process);
                if (it == members.end()) return;
                std::string name = it->second;
                members.erase(it);
                broadcast(fmt::format("* {} left\n", name));
            });
    }
}

void member(tcp::socket s) {
    s.write("name? ");
    s.set_active(tcp::active::once());
    std::string name;
    std::string buffer;
    for (;;) {
        bool open = erl::receive(
            [&](erl::tcp_data d) {
                buffer += d.data;
                for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
                    std::string text = buffer.substr(0, nl);
                    buffer.erase(0, nl + 1);
                    if (!text.empty() && text.back() == '\r') text.pop_back();
                    if (name.empty()) {
                        name = text.empty() ? fmt::format("{}", erl::self()) : text;
                        erl::send("room"_a, join{erl::self(), name});
                    } else if (!text.empty()) {
                        erl::send("room"_a, said{name, text});
                    }
                }
                s.set_active(tcp::active::once()); // flow control: one chunk at a time
                return true;
            },
            [&](line l) {
                s.write(l.text, 5s); // a member that does not read for 5 s is dropped
                return true;
            },
            [](erl::tcp_closed) { return false; }, [](erl::tcp_error) { return false; });
        if (!open) return;
    }
}

void acceptor(std::string host, std::uint16_t port) {
    tcp::listener l = tcp::listen(host, port, {.socket = {.nodelay = true}});
    fmt::print("listening on {}:{}\n", host, l.local().port());
    std::fflush(stdout);
    for (;;) {
        tcp::socket s = l.accept();
        auto m = sup::start_child("members"_a, s);
        if (m) {
            s.controlling_process(m.pid());
        } else {
            s.close();
        }
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7001;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view a = argv[i];
        if (a == "--port") {
            port = std::uint16_t(std::stoul(argv[i + 1]));
        } else if (a == "--host") {
            host = argv[i + 1];
        } else {
            fmt::print(stderr, "usage: chat_room [--port N] [--host H]\n");
            return 2;
        }
    }
    erl::set_log_handler([](const erl::log_event& e) {
        if (e.level >= erl::log_level::warning && e.kind != erl::atom("crash_report"))
            fmt::print(stderr, "{}\n", e.text);
    });
    erl::application app([host, port] {
        sup::child_spec m = sup::dynamic_worker<tcp::socket>("member"_a, member);
        m.restart = sup::restart_type::temporary;
        m.shutdown = sup::shutdown_policy::brutal_kill();
        sup::flags pool;
        pool.strategy = sup::strategy::simple_one_for_one;
        sup::flags top;
        top.strategy = sup::strategy::rest_for_one;
        top.intensity = 5;
        top.period = 10s;
        auto members = sup::supervisor_spec("members"_a, pool, {m});
        members.start = [pool, m] { return sup::start_link("members"_a, pool, {m}); };
        return sup::start_link("chat"_a, top,
                               {sup::worker("room"_a, room), members,
                                sup::worker("acceptor"_a, acceptor, host, port)});
    });
    return app.run();
}
