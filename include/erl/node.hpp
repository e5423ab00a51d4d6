// Calls of a distributed node (a runtime made with runtime_options::distribution): the node's
// name, its connections, node monitoring, sends to registered names on other nodes, and C++
// functions that Erlang nodes can call with erpc:call / rpc:call.
//
// A pid of another node is used like any pid: send, link, monitor, exit, gen calls. Messages to
// other nodes must be erl::term or types with a term conversion (erl::to_term); messages from
// them arrive as erl::term.
#pragma once

#include <functional>
#include <string_view>
#include <type_traits>
#include <vector>

#include <erl/atom.hpp>
#include <erl/message.hpp>
#include <erl/pid.hpp>
#include <erl/ref.hpp>
#include <erl/remote_name.hpp>
#include <erl/term.hpp>
#include <erl/term_convert.hpp>

namespace erl {

// This runtime's node name (nonode@nohost when it is not distributed).
atom node();
// The nodes this one is connected to now (hidden ones included).
std::vector<atom> nodes();
// Connects now (as a send would, but waiting for the outcome): true when connected.
bool connect_node(atom node);
// Closes the connection to `node` (its linked and monitoring processes see noconnection).
bool disconnect_node(atom node);

// monitor_node(Node, true): the caller gets erl::nodedown{node} when the connection to `node`
// goes down (at once when it cannot be made); once per call, like Erlang. false removes one.
struct nodedown {
    atom node;
};
void monitor_node(atom node, bool on);
// net_kernel:monitor_nodes(true): the caller gets erl::nodeup{node} when a connection to any
// node comes up and erl::nodedown{node} when one goes (until monitor_nodes(false); a process
// that ends is forgotten with its messages dropped).
struct nodeup {
    atom node;
};
void monitor_nodes(bool on);

namespace detail {
void send_to_remote_name(const remote_name& to, term message);
}

// {Name, Node} ! Msg. Only terms and types with a term conversion can go to another node: a
// compile-time error for others.
template <typename T>
void send(const remote_name& to, T&& msg) {
    using value_type = std::remove_cvref_t<T>;
    static_assert(term_convertible<value_type>,
                  "erl::send to another node: the message needs a term conversion (erl::to_term)");
    detail::send_to_remote_name(to, to_term(std::forward<T>(msg)));
}

// monitor({Name, Node}): DOWN (noproc at once when nobody has the name there, noconnection
// when the node cannot be reached) as erl::down_msg with `name` set.
ref monitor(const remote_name& target);

// Functions that Erlang can call on this node: erpc:call(Node, Module, Function, Args) and
// rpc:call run `fn(Args)` in a new process; its result is the call's result. An exception
// becomes an Erlang error ({exception, Type, What}); an unknown function is Erlang's undef.
using rpc_function = std::function<term(const std::vector<term>& args)>;
// Registers `fn` in the calling process's runtime (or, from a plain thread, for every runtime
// made later). Replaces an earlier function of that name.
void register_rpc(atom module, atom function, rpc_function fn);

} // namespace erl
