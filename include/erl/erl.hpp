// erlcpp: Erlang/OTP's processes, signals and mailboxes for C++. The umbrella header.
#pragma once

#include <erl/application.hpp>
#include <erl/atom.hpp>
#include <erl/blocking.hpp>
#include <erl/etf.hpp>
#include <erl/exit_reason.hpp>
#include <erl/gen.hpp>
#include <erl/gen_server.hpp>
#include <erl/link.hpp>
#include <erl/logger.hpp>
#include <erl/message.hpp>
#include <erl/monitor.hpp>
#include <erl/pid.hpp>
#include <erl/process.hpp>
#include <erl/process_info.hpp>
#include <erl/receive.hpp>
#include <erl/ref.hpp>
#include <erl/registry.hpp>
#include <erl/runtime.hpp>
#include <erl/supervisor.hpp>
#include <erl/sys.hpp>
#include <erl/term.hpp>
#include <erl/term_convert.hpp>
#include <erl/term_match.hpp>
#include <erl/timer.hpp>
