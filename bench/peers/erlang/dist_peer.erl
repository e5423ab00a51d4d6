%% Distribution benchmarks (issue 9), Erlang/OTP side of bench/run's dist_pingpong,
%% dist_pipelined and dist_call; bench/erlcpp/bench_dist.cpp is the erlcpp side, step by step
%% the same, so each role can be played by either implementation.
%%
%% Usage (compiled with erlc into DIR; ERL_EPMD_PORT names the EPMD to use):
%%   erl +S S -noshell -name NODE -setcookie C -pa DIR -run dist_peer main respond
%%   erl +S S -noshell -hidden -name NODE -setcookie C -pa DIR -run dist_peer main drive PEER \
%%       pingpong N | pipelined N W | call N
%%
%% respond: registers `pong`, a process that answers each {From, N} with {pong, N} sent to From,
%% and `echo`, a gen_server (this module) whose handle_call returns the request; prints "ready"
%% once both are registered; runs until the VM is stopped (SIGTERM: init:stop(), status 0).
%%
%% drive: connects to PEER, warms up (1,000 rounds), then measures and prints one RESULT line
%% (impl=erlang):
%%   pingpong N     one process sends {self(), I} to {pong, Peer} and waits for {pong, I},
%%                  N times: round trips/s;
%%   pipelined N W  the same N requests with W of them in flight: the first W are sent at once,
%%                  each reply sends the next; replies/s (they must come in order);
%%   call N         N gen_server:call({echo, Peer}, I): calls/s.
%% The driver is a hidden node, as erlcpp's nodes are by default: the connection is the same
%% kind in every pairing (no global name sync on it).
-module(dist_peer).
-behaviour(gen_server).

-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(WARMUP, 1000).
-define(REPLY_TIMEOUT, 10000).

main(["respond"]) ->
    register(pong, spawn(fun pong/0)),
    {ok, _} = gen_server:start({local, echo}, ?MODULE, [], []),
    io:format("ready~n"),
    receive after infinity -> ok end;
main(["drive", PeerName, Bench | Args]) ->
    Peer = list_to_atom(PeerName),
    case net_kernel:connect_node(Peer) of
        true -> ok;
        _ -> fail("cannot connect to " ++ PeerName)
    end,
    Sizes = [list_to_integer(A) || A <- Args],
    Line = drive(list_to_atom(Bench), Peer, Sizes),
    io:format("~s~n", [Line]),
    halt(0);
main(_) ->
    io:format(standard_error,
              "usage: dist_peer main respond | drive PEER pingpong N | pipelined N W | call N~n",
              []),
    halt(2).

fail(Why) ->
    io:format(standard_error, "dist_peer: ~s~n", [Why]),
    halt(1).

%% --- the responder ------------------------------------------------------------------------
pong() ->
    receive
        {From, N} when is_pid(From) -> From ! {pong, N};
        _ -> ok
    end,
    pong().

init([]) -> {ok, nostate}.
handle_call(Request, _From, State) -> {reply, Request, State}.
handle_cast(_Msg, State) -> {noreply, State}.
handle_info(_Msg, State) -> {noreply, State}.

%% --- the driver ---------------------------------------------------------------------------
drive(Bench, Peer, Sizes) ->
    {N, Run} = case {Bench, Sizes} of
                   {pingpong, [N0]} -> {N0, fun(C) -> pingpong({pong, Peer}, 1, C) end};
                   {pipelined, [N0, W]} -> {N0, fun(C) -> pipelined({pong, Peer}, C, W) end};
                   {call, [N0]} -> {N0, fun(C) -> calls({echo, Peer}, 1, C) end};
                   _ -> fail("unknown benchmark or wrong sizes")
               end,
    Run(?WARMUP),
    T0 = erlang:monotonic_time(nanosecond),
    Run(N),
    T1 = erlang:monotonic_time(nanosecond),
    Ns = T1 - T0,
    Extra = io_lib:format(" us_per_op=~s peer=~s", [fmt(Ns / 1.0e3 / N), Peer]),
    case Bench of
        pingpong ->
            line(dist_pingpong, N, Ns, "rt/s",
                 [Extra, io_lib:format(" msgs_per_s=~s", [fmt(2.0e9 * N / Ns)])]);
        pipelined ->
            [_, W1] = Sizes,
            line(dist_pipelined, N, Ns, "msgs/s", [Extra, io_lib:format(" window=~p", [W1])]);
        call ->
            line(dist_call, N, Ns, "calls/s", [Extra, " variant=gen_server"])
    end.

await_pong(I) ->
    receive
        {pong, I} -> ok
    after ?REPLY_TIMEOUT -> fail("no reply or a wrong one")
    end.

pingpong(_Pong, I, N) when I > N -> ok;
pingpong(Pong, I, N) ->
    Pong ! {self(), I},
    await_pong(I),
    pingpong(Pong, I + 1, N).

%% N requests, W in flight: the replies must come back in order (one connection keeps it).
pipelined(Pong, N, W) ->
    First = min(N, W),
    [Pong ! {self(), I} || I <- lists:seq(1, First)],
    pipelined(Pong, N, 1, First).

pipelined(_Pong, N, Got, _Sent) when Got > N -> ok;
pipelined(Pong, N, Got, Sent) ->
    await_pong(Got),
    case Sent < N of
        true -> Pong ! {self(), Sent + 1}, pipelined(Pong, N, Got + 1, Sent + 1);
        false -> pipelined(Pong, N, Got + 1, Sent)
    end.

calls(_Echo, I, N) when I > N -> ok;
calls(Echo, I, N) ->
    case gen_server:call(Echo, I) of
        I -> calls(Echo, I + 1, N);
        _ -> fail("wrong reply")
    end.

%% --- the RESULT line (as peer_erl.erl prints it) -------------------------------------------
fmt(F) -> float_to_list(F, [{decimals, 3}, compact]).

line(Name, N, Ns, Unit, Extra) ->
    lists:flatten(io_lib:format(
        "RESULT name=~s impl=erlang n=~p seconds=~s rate=~s unit=~s threads=~p peak_rss_kb=~p~s",
        [Name, N, float_to_list(Ns / 1.0e9, [{decimals, 6}, compact]), fmt(N * 1.0e9 / Ns), Unit,
         erlang:system_info(schedulers_online), rss_peak_kb(), Extra])).

rss_peak_kb() ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    case re:run(Bin, "VmHWM:\\s*(\\d+)", [{capture, all_but_first, list}]) of
        {match, [Kb]} -> list_to_integer(Kb);
        nomatch -> -1
    end.
