// For the runtime's own services: sockets made outside erl::tcp. Internal.
#pragma once

#include <erl/tcp.hpp>

namespace erl::detail {

// Takes a listening (non-blocking, close-on-exec) descriptor into a listener owned by the
// calling process. Closes fd and throws io_error on failure.
tcp::listener adopt_listener_fd(int fd);

} // namespace erl::detail
