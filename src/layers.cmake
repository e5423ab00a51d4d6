# The compiled core, one layer per folder; each layer uses only the ones above it.
target_sources(erlcpp PRIVATE
  # stacks and context switching
  ${CMAKE_CURRENT_LIST_DIR}/context/execution_context.cpp
  ${CMAKE_CURRENT_LIST_DIR}/context/stack_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/context/overflow.cpp
  # scheduler and timers
  ${CMAKE_CURRENT_LIST_DIR}/scheduler/scheduler.cpp
  ${CMAKE_CURRENT_LIST_DIR}/scheduler/timer_wheel.cpp
  ${CMAKE_CURRENT_LIST_DIR}/scheduler/timer_store.cpp
  ${CMAKE_CURRENT_LIST_DIR}/scheduler/timers.cpp
  ${CMAKE_CURRENT_LIST_DIR}/scheduler/message_cache.cpp
  # processes and mailboxes
  ${CMAKE_CURRENT_LIST_DIR}/process/process_table.cpp
  ${CMAKE_CURRENT_LIST_DIR}/process/process.cpp
  ${CMAKE_CURRENT_LIST_DIR}/process/delivery.cpp
  # signals: links, exits, monitors, names, introspection
  ${CMAKE_CURRENT_LIST_DIR}/signals/signals.cpp
  ${CMAKE_CURRENT_LIST_DIR}/signals/links.cpp
  ${CMAKE_CURRENT_LIST_DIR}/signals/monitors.cpp
  ${CMAKE_CURRENT_LIST_DIR}/signals/registry.cpp
  ${CMAKE_CURRENT_LIST_DIR}/signals/introspection.cpp
  # process-aware I/O: the poller, sockets, erl::blocking's side threads
  ${CMAKE_CURRENT_LIST_DIR}/io/poller.cpp
  ${CMAKE_CURRENT_LIST_DIR}/io/io_error.cpp
  ${CMAKE_CURRENT_LIST_DIR}/io/resolve.cpp
  ${CMAKE_CURRENT_LIST_DIR}/io/tcp.cpp
  ${CMAKE_CURRENT_LIST_DIR}/io/blocking_pool.cpp
  # the runtime object and the logger
  ${CMAKE_CURRENT_LIST_DIR}/runtime/runtime.cpp
  ${CMAKE_CURRENT_LIST_DIR}/runtime/logger.cpp
  # distribution protocol, without I/O (EPMD, handshake, packets, control messages); uses
  # the terms and the ETF codec (term/sources.cmake)
  ${CMAKE_CURRENT_LIST_DIR}/dist/wire.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/md5.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/flags.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/node_name.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/cookie.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/epmd.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/handshake.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/control.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/framing.cpp
  # the node: EPMD registration, net_kernel, connection processes on erl::tcp, remote routing
  ${CMAKE_CURRENT_LIST_DIR}/dist/node_service.cpp
  ${CMAKE_CURRENT_LIST_DIR}/dist/connection.cpp
)
