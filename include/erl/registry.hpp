// Registered names: a local atom for a pid.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <erl/atom.hpp>
#include <erl/message.hpp>
#include <erl/pid.hpp>

namespace erl {

// Erlang's badarg: a call given an argument it cannot act on (a taken name, an unregistered
// name...). The message says what was wrong.
class badarg : public std::invalid_argument {
  public:
    explicit badarg(const std::string& what) : std::invalid_argument(what) {}
};

// Registers `name` for `p` (a live local process without a name) in the caller's runtime.
// Throws badarg when the name is taken or is 'undefined', when p is dead or already named.
void register_name(atom name, const pid& p);
// Removes the name; throws badarg when it is not registered.
void unregister(atom name);
// The process registered as `name`, if any.
std::optional<pid> whereis(atom name);
// Every registered name of the caller's runtime.
std::vector<atom> registered();

// Sends to a registered name; throws badarg when the name is not registered, like Erlang's
// `Name ! Msg`.
template <typename T>
void send(atom name, T&& msg) {
    auto p = whereis(name);
    if (!p) throw badarg(fmt::format("erl::send: no process is registered as {}", name));
    send(*p, std::forward<T>(msg));
}

} // namespace erl
