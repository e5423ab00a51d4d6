%% Peer benchmarks, Erlang/OTP side.
%%
%% Usage (compiled with erlc into the same directory):
%%   erl +P 2000000 +S <1|2> -noshell -pa <dir> -run peer_erl main <bench> <args...>
%%
%% Benchmarks (sizes on the command line):
%%   pingpong N         N round trips between two processes (2N messages)
%%   ring N             503-process thread-ring, token passed N times in total
%%   spawn N            spawn N processes; each sends one message to the parent and exits
%%   spawn_idle N       N processes alive at once, each blocked in receive; memory per process
%%   fanin K M          K senders each send M messages to one receiver
%%   call N             N gen_server:call round trips to a gen_server
%%   skynet N           skynet tree with N leaves (1000000 = the classic), 10 children per node
%%   selective Q I      Q unrelated messages queued; I rounds of make_ref + request + receive
%%                      of the reply carrying the ref (the compiler's recv_mark optimisation)
%%   timers N           N erlang:send_after timers (1 h, to self) started, then all cancelled
%%   parallel_pingpong P N   P independent ping/pong pairs, N round trips each
%%   etf_encode N File  N term_to_binary calls cycling over the terms of File (bench/etf_mix.txt)
%%   etf_decode N File  N binary_to_term calls cycling over the same terms, encoded beforehand
%%
%% Every run prints exactly one line that starts with "RESULT ".
-module(peer_erl).
-behaviour(gen_server).

-export([main/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% etf_encode / etf_decode: minor_version 2 writes atoms as SMALL_ATOM_UTF8_EXT, as erlcpp does
%% and OTP 26+ does by default (OTP 25's default writes ATOM_EXT): both sides move the same bytes.
-define(ETF_OPTS, [{minor_version, 2}]).

%% ---------------------------------------------------------------------------
main([Bench | Args]) ->
    Ints = [arg(A) || A <- Args],
    %% warm the code (module already loaded); run the benchmark
    Res = run(list_to_atom(Bench), Ints),
    io:format("~s~n", [Res]),
    halt(0).

arg(A) ->
    try list_to_integer(A) catch error:badarg -> A end.

now_ns() -> erlang:monotonic_time(nanosecond).

secs(Ns) -> Ns / 1.0e9.

fmt_float(F) -> float_to_list(F, [{decimals, 6}, compact]).

proc_status_kb(Key) ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    Lines = string:split(binary_to_list(Bin), "\n", all),
    find_kb(Key, Lines).

find_kb(_Key, []) -> -1;
find_kb(Key, [L | Rest]) ->
    case string:prefix(L, Key ++ ":") of
        nomatch -> find_kb(Key, Rest);
        Tail ->
            [Num | _] = string:lexemes(Tail, " \t"),
            list_to_integer(Num)
    end.

line(Name, N, Ns, Rate, Unit, Extra) ->
    lists:flatten(io_lib:format(
        "RESULT name=~s impl=erlang n=~p seconds=~s rate=~s unit=~s threads=~p peak_rss_kb=~p~s",
        [Name, N, fmt_float(secs(Ns)), fmt_float(Rate), Unit,
         erlang:system_info(schedulers_online), proc_status_kb("VmHWM"), Extra])).

%% ---------------------------------------------------------------------------
run(pingpong, [N]) ->
    Pong = spawn_link(fun pong/0),
    ping(Pong, 1000),                       % warm-up
    T0 = now_ns(),
    ping(Pong, N),
    T1 = now_ns(),
    Pong ! stop,
    Ns = T1 - T0,
    line(pingpong, N, Ns, 2 * N / secs(Ns), "msgs/s",
         io_lib:format(" ns_per_msg=~s", [fmt_float(Ns / (2 * N))]));

run(ring, [N]) ->
    Main = self(),
    Pids = [spawn_link(fun() -> ring_init(Main) end) || _ <- lists:seq(1, 503)],
    [First | _] = Pids,
    Rot = tl(Pids) ++ [First],
    lists:foreach(fun({P, Next}) -> P ! {next, Next} end, lists:zip(Pids, Rot)),
    T0 = now_ns(),
    First ! N,
    receive {ring_done, _Who} -> ok end,
    T1 = now_ns(),
    Ns = T1 - T0,
    line(ring, N, Ns, N / secs(Ns), "passes/s",
         io_lib:format(" ns_per_pass=~s procs=503", [fmt_float(Ns / N)]));

%% spawn, spawn_idle and fanin make the main process collect up to N messages
%% while it is still busy: its queue is kept off the heap
%% (process_flag(message_queue_data, off_heap), the documented setting for
%% processes that receive many messages), otherwise every GC of the main
%% process rescans the whole queue and the run turns quadratic.  The other
%% benchmarks use the default (on_heap), which is faster for them.
run(spawn, [N]) ->
    process_flag(message_queue_data, off_heap),
    Self = self(),
    T0 = now_ns(),
    spawn_n(N, Self),
    wait_n(N),
    T1 = now_ns(),
    Ns = T1 - T0,
    line(spawn, N, Ns, N / secs(Ns), "procs/s",
         io_lib:format(" ns_per_spawn=~s", [fmt_float(Ns / N)]));

run(spawn_idle, [N]) ->
    process_flag(message_queue_data, off_heap),
    Self = self(),
    erlang:garbage_collect(),
    Rss0 = proc_status_kb("VmRSS"),
    Mem0 = erlang:memory(processes),
    T0 = now_ns(),
    spawn_idle_n(N, Self),
    wait_n(N),
    T1 = now_ns(),
    erlang:garbage_collect(),
    Rss1 = proc_status_kb("VmRSS"),
    Mem1 = erlang:memory(processes),
    %% size of one idle process as the VM reports it
    P = spawn(fun idle/0),
    timer:sleep(10),
    {memory, OneBytes} = process_info(P, memory),
    Ns = T1 - T0,
    line(spawn_idle, N, Ns, N / secs(Ns), "procs/s",
         io_lib:format(" rss_bytes_per_proc=~s vm_bytes_per_proc=~s process_info_memory=~p procs_alive=~p",
                       [fmt_float((Rss1 - Rss0) * 1024 / N),
                        fmt_float((Mem1 - Mem0) / N), OneBytes,
                        erlang:system_info(process_count)]));

run(fanin, [K, M]) ->
    process_flag(message_queue_data, off_heap),
    Self = self(),
    Total = K * M,
    T0 = now_ns(),
    [spawn(fun() -> send_n(Self, M) end) || _ <- lists:seq(1, K)],
    recv_n(Total),
    T1 = now_ns(),
    Ns = T1 - T0,
    line(fanin, Total, Ns, Total / secs(Ns), "msgs/s",
         io_lib:format(" senders=~p per_sender=~p ns_per_msg=~s", [K, M, fmt_float(Ns / Total)]));

run(call, [N]) ->
    {ok, S} = gen_server:start_link(?MODULE, [], []),
    call_n(S, 1000),                        % warm-up
    T0 = now_ns(),
    call_n(S, N),
    T1 = now_ns(),
    Ns = T1 - T0,
    line(call, N, Ns, N / secs(Ns), "calls/s",
         io_lib:format(" ns_per_call=~s", [fmt_float(Ns / N)]));

run(hibernated, [N]) ->
    erlang:garbage_collect(),
    Rss0 = proc_status_kb("VmRSS"),
    T0 = now_ns(),
    Servers = [begin {ok, S} = gen_server:start(?MODULE, hibernate, []), S end
               || _ <- lists:seq(1, N)],
    T1 = now_ns(),
    timer:sleep(100),
    Rss1 = proc_status_kb("VmRSS"),
    7 = gen_server:call(lists:nth(N div 2 + 1, Servers), 7, infinity),
    Ns = T1 - T0,
    line(hibernated, N, Ns, N / secs(Ns), "servers/s",
         io_lib:format(" rss_bytes_per_server=~s servers_alive=~p",
                       [fmt_float((Rss1 - Rss0) * 1024 / N), N]));

run(skynet, [N]) ->
    Self = self(),
    T0 = now_ns(),
    spawn(fun() -> skynet(Self, 0, N, 10) end),
    Sum = receive S -> S end,
    T1 = now_ns(),
    Expected = N * (N - 1) div 2,
    Sum = Expected,                          % crash if wrong
    Ns = T1 - T0,
    Procs = skynet_procs(N, 10),
    line(skynet, N, Ns, Procs / secs(Ns), "procs/s",
         io_lib:format(" total_procs=~p sum=~p", [Procs, Sum]));

run(selective, [Q, I]) ->
    S = spawn_link(fun sel_server/0),
    Self = self(),
    [Self ! {junk, J} || J <- lists:seq(1, Q)],
    sel_rounds(S, 1000),                    % warm-up
    T0 = now_ns(),
    sel_rounds(S, I),
    T1 = now_ns(),
    S ! stop,
    {message_queue_len, Q} = process_info(Self, message_queue_len),  % all still queued
    Ns = T1 - T0,
    line(selective, Q, Ns, I / secs(Ns), "rounds/s",
         io_lib:format(" queued=~p rounds=~p ns_per_round=~s", [Q, I, fmt_float(Ns / I)]));

run(timers, [N]) ->
    Self = self(),
    T0 = now_ns(),
    Refs = start_timers(N, Self, []),
    T1 = now_ns(),
    Cancelled = cancel_timers(lists:reverse(Refs), 0),  % in the order they were started
    T2 = now_ns(),
    Cancelled = N,
    Ns = T2 - T0,
    line(timers, N, Ns, N / secs(Ns), "timers/s",
         io_lib:format(" ns_per_timer=~s ns_per_set=~s ns_per_cancel=~s",
                       [fmt_float(Ns / N), fmt_float((T1 - T0) / N), fmt_float((T2 - T1) / N)]));

run(parallel_pingpong, [P, N]) ->
    process_flag(message_queue_data, off_heap),
    Self = self(),
    T0 = now_ns(),
    [spawn_link(fun() -> pp_pair(Self, N) end) || _ <- lists:seq(1, P)],
    wait_n(P),
    T1 = now_ns(),
    Ns = T1 - T0,
    Msgs = 2 * P * N,
    line(parallel_pingpong, N, Ns, Msgs / secs(Ns), "msgs/s",
         io_lib:format(" pairs=~p ns_per_msg=~s", [P, fmt_float(Ns / Msgs)]));

run(etf_encode, [N, File]) ->
    Mix = etf_mix(File),
    _ = etf_enc_loop(Mix, Mix, length(Mix), 0),          % warm-up: one pass
    T0 = now_ns(),
    Bytes = etf_enc_loop(Mix, Mix, N, 0),
    T1 = now_ns(),
    etf_line(etf_encode, N, T1 - T0, Bytes, Mix);

run(etf_decode, [N, File]) ->
    Mix = etf_mix(File),
    Bins = [term_to_binary(T, ?ETF_OPTS) || T <- Mix],
    [T = binary_to_term(B) || {T, B} <- lists:zip(Mix, Bins)],  % round trip, or crash
    _ = etf_dec_loop(Bins, Bins, length(Bins), 0),       % warm-up: one pass
    T0 = now_ns(),
    Bytes = etf_dec_loop(Bins, Bins, N, 0),
    T1 = now_ns(),
    etf_line(etf_decode, N, T1 - T0, Bytes, Mix).


%% --- selective -------------------------------------------------------------
sel_server() ->
    receive
        {From, Ref} -> From ! {Ref, reply}, sel_server();
        stop -> ok
    end.

sel_rounds(_S, 0) -> ok;
sel_rounds(S, K) ->
    Ref = make_ref(),
    S ! {self(), Ref},
    receive {Ref, reply} -> sel_rounds(S, K - 1) end.

%% --- timers ----------------------------------------------------------------
start_timers(0, _, Acc) -> Acc;
start_timers(K, P, Acc) -> start_timers(K - 1, P, [erlang:send_after(3600000, P, tick) | Acc]).

cancel_timers([], C) -> C;
cancel_timers([R | Rs], C) ->
    case erlang:cancel_timer(R) of
        false -> cancel_timers(Rs, C);
        _ -> cancel_timers(Rs, C + 1)
    end.

%% --- parallel_pingpong -----------------------------------------------------
pp_pair(Main, N) ->
    Pong = spawn_link(fun pong/0),
    ping(Pong, N),
    Pong ! stop,
    Main ! done.

%% --- pingpong --------------------------------------------------------------
ping(_Pong, 0) -> ok;
ping(Pong, K) ->
    Pong ! {self(), K},
    receive K -> ping(Pong, K - 1) end.

pong() ->
    receive
        {From, K} -> From ! K, pong();
        stop -> ok
    end.

%% --- ring ------------------------------------------------------------------
ring_init(Main) ->
    receive {next, Next} -> ring_loop(Next, Main) end.

ring_loop(Next, Main) ->
    receive
        0 -> Main ! {ring_done, self()}, ring_loop(Next, Main);
        T -> Next ! (T - 1), ring_loop(Next, Main)
    end.

%% --- spawn -----------------------------------------------------------------
spawn_n(0, _) -> ok;
spawn_n(K, P) ->
    spawn(fun() -> P ! done end),
    spawn_n(K - 1, P).

wait_n(0) -> ok;
wait_n(K) -> receive done -> wait_n(K - 1) end.

spawn_idle_n(0, _) -> ok;
spawn_idle_n(K, P) ->
    spawn(fun() -> P ! done, idle() end),
    spawn_idle_n(K - 1, P).

idle() -> receive stop -> ok end.

%% --- fanin -----------------------------------------------------------------
send_n(_, 0) -> ok;
send_n(P, K) -> P ! K, send_n(P, K - 1).

recv_n(0) -> ok;
recv_n(K) -> receive _ -> recv_n(K - 1) end.

%% --- call (gen_server) -----------------------------------------------------
call_n(_, 0) -> ok;
call_n(S, K) -> K = gen_server:call(S, K, infinity), call_n(S, K - 1).

init([]) -> {ok, 0};
init(hibernate) -> {ok, 0, hibernate}.
handle_call(X, _From, St) -> {reply, X, St}.
handle_cast(_, St) -> {noreply, St}.
handle_info(_, St) -> {noreply, St}.

%% --- skynet ----------------------------------------------------------------
skynet(Parent, Num, 1, _Div) -> Parent ! Num;
skynet(Parent, Num, Size, Div) ->
    Self = self(),
    NewSize = Size div Div,
    spawn_children(Self, Num, NewSize, Div, 0),
    Parent ! collect(Div, 0).

spawn_children(_, _, _, Div, Div) -> ok;
spawn_children(Self, Num, NewSize, Div, I) ->
    SubNum = Num + I * NewSize,
    spawn(fun() -> skynet(Self, SubNum, NewSize, Div) end),
    spawn_children(Self, Num, NewSize, Div, I + 1).

collect(0, Sum) -> Sum;
collect(K, Sum) -> receive X -> collect(K - 1, Sum + X) end.

skynet_procs(1, _) -> 1;
skynet_procs(Size, Div) -> 1 + Div * skynet_procs(Size div Div, Div).

%% --- etf_encode / etf_decode -------------------------------------------------
etf_enc_loop(_, _, 0, Bytes) -> Bytes;
etf_enc_loop([], All, K, Bytes) -> etf_enc_loop(All, All, K, Bytes);
etf_enc_loop([T | Rest], All, K, Bytes) ->
    etf_enc_loop(Rest, All, K - 1, Bytes + byte_size(term_to_binary(T, ?ETF_OPTS))).

etf_dec_loop(_, _, 0, Bytes) -> Bytes;
etf_dec_loop([], All, K, Bytes) -> etf_dec_loop(All, All, K, Bytes);
etf_dec_loop([B | Rest], All, K, Bytes) ->
    _ = binary_to_term(B),
    etf_dec_loop(Rest, All, K - 1, Bytes + byte_size(B)).

etf_line(Name, N, Ns, Bytes, Mix) ->
    MixBytes = lists:sum([byte_size(term_to_binary(T, ?ETF_OPTS)) || T <- Mix]),
    line(Name, N, Ns, N / secs(Ns), "terms/s",
         io_lib:format(" ns_per_term=~s mb_per_s=~s bytes=~p mix_terms=~p mix_bytes=~p",
                       [fmt_float(Ns / N), fmt_float(Bytes / 1.0e6 / secs(Ns)), Bytes,
                        length(Mix), MixBytes])).

%% One term per line, '%' lines are comments; the atoms '$pid' and '$ref' become a remote pid
%% and a remote reference, built from their external format exactly as bench_erlcpp builds them.
etf_mix(File) ->
    {ok, Bin} = file:read_file(File),
    Lines = [L || L <- binary:split(Bin, <<"\n">>, [global]), L =/= <<>>,
                  binary:first(L) =/= $%],
    [etf_subst(etf_parse(binary_to_list(L))) || L <- Lines].

etf_parse(S) ->
    {ok, Toks, _} = erl_scan:string(S ++ "."),
    {ok, Exprs} = erl_parse:parse_exprs(Toks),
    {value, V, _} = erl_eval:exprs(Exprs, []),
    V.

-define(ETF_NODE, <<"bench@host.example">>).
etf_subst('$pid') ->
    N = ?ETF_NODE,
    binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, 4711:32, 0:32, 1712345678:32>>);
etf_subst('$ref') ->
    N = ?ETF_NODE,
    binary_to_term(<<131, 90, 3:16, 119, (byte_size(N)), N/binary, 1712345678:32,
                     123456:32, 2345678901:32, 3456789012:32>>);
etf_subst(T) when is_tuple(T) -> list_to_tuple([etf_subst(E) || E <- tuple_to_list(T)]);
etf_subst([H | T]) -> [etf_subst(H) | etf_subst(T)];
etf_subst(M) when is_map(M) -> maps:from_list([{etf_subst(K), etf_subst(V)} || {K, V} <- maps:to_list(M)]);
etf_subst(T) -> T.
