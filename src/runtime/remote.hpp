// The door to other nodes: the distribution layer (src/dist) implements remote_router and
// installs it in a runtime that is a node; the core hands it every signal whose target is a pid
// of another node. Internal.
#pragma once

#include <erl/detail/envelope.hpp>
#include <erl/detail/process_api.hpp>
#include <erl/pid.hpp>

#include <memory>

namespace erl::detail {

class remote_router {
  public:
    virtual ~remote_router() = default;
    // Takes a signal (a message, exit, link, unlink, monitor, demonitor or DOWN) for `to`, a
    // process of another node, from `sender` (null from a plain thread). `convert` turns a
    // message envelope into a term (null when its type has none). Never blocks; failures are
    // Erlang's: an unreachable node drops messages and answers links and monitors with
    // noconnection.
    virtual void route(const pid& sender, const pid& to, envelope_ptr e,
                       message_to_term convert) = 0;
};

} // namespace erl::detail

namespace erl {
struct distribution_options;
}

namespace erl::detail {
struct runtime_impl;
namespace dist {
// src/dist: makes the runtime a node (in its constructor, before any process runs) and starts
// the node's processes (after the schedulers started).
std::unique_ptr<remote_router> make_node_service(runtime_impl& rt,
                                                 const distribution_options& options);
void start_node_service(runtime_impl& rt);
} // namespace dist
} // namespace erl::detail
