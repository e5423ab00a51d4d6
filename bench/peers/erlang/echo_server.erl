%% TCP echo server, Erlang/OTP side of bench/run's `echo` benchmark (issue #8).
%%
%% Usage (compiled with erlc into DIR):
%%   erl +S <schedulers> -noshell -pa DIR -run echo_server main -extra --port N [--host H]
%%
%% (`-extra`: erl would take "--port" for one of its own flags; what follows -extra reaches
%% init:get_plain_arguments() untouched, and -run without arguments calls main/0.)
%%
%% Prints exactly "listening on H:N" once the socket listens (N is the real port, so
%% --port 0 works), then echoes every byte it receives on every connection until the VM is
%% stopped: SIGTERM (what bench/run sends) makes the VM stop through init:stop(), which
%% exits with status 0.
%%
%% The design is the plain idiomatic one for throughput with gen_tcp:
%%   - one listening socket: binary, {packet, raw}, passive ({active, false}), nodelay,
%%     reuseaddr, a backlog of 1024 (1,000 clients connect at once);
%%   - one process per connection; the process that accepted a connection spawns the next
%%     acceptor and then serves its own connection, so a socket never changes owner
%%     (no controlling_process hand-over);
%%   - each connection process loops on gen_tcp:recv(Sock, 0), which returns whatever
%%     bytes are there, and sends them back unchanged.
%% Passive recv rather than {active, once}: for an echo, both make one call into the port per
%% message (recv, or setopts to re-arm); they measured about the same here (OTP 25, +S 1,
%% 1,000 connections: 84-88 k against 72-90 k req/s, noisy), and passive is the plainer code.
%% Default VM flags otherwise, as in peer_erl.erl.
-module(echo_server).

-export([main/0]).

-define(LISTEN_OPTS, [binary, {packet, raw}, {active, false}, {nodelay, true},
                      {reuseaddr, true}, {backlog, 1024}]).

main() ->
    {Host, Port} = parse_args(init:get_plain_arguments(), {"127.0.0.1", undefined}),
    Ip = case inet:parse_address(Host) of
             {ok, A} -> A;
             {error, _} -> usage("bad --host " ++ Host ++ " (an IPv4 or IPv6 address)")
         end,
    Family = case tuple_size(Ip) of 4 -> inet; 8 -> inet6 end,
    case gen_tcp:listen(Port, [Family, {ip, Ip} | ?LISTEN_OPTS]) of
        {ok, Listen} ->
            {ok, Bound} = inet:port(Listen),
            spawn(fun() -> acceptor(Listen) end),
            io:format("listening on ~s:~p~n", [Host, Bound]),
            %% The listening socket belongs to this process: it must outlive the server.
            receive after infinity -> ok end;
        {error, Why} ->
            io:format(standard_error, "echo_server: cannot listen on ~s:~p: ~s~n",
                      [Host, Port, inet:format_error(Why)]),
            halt(1)
    end.

parse_args([], {_, undefined}) -> usage("--port is required");
parse_args([], Acc) -> Acc;
parse_args(["--port", P | Rest], {H, _}) ->
    case catch list_to_integer(P) of
        N when is_integer(N), N >= 0, N =< 65535 -> parse_args(Rest, {H, N});
        _ -> usage("bad --port " ++ P)
    end;
parse_args(["--host", H | Rest], {_, P}) -> parse_args(Rest, {H, P});
parse_args([Other | _], _) -> usage("unknown argument " ++ Other).

usage(Msg) ->
    io:format(standard_error,
              "echo_server: ~s~nusage: erl +S S -noshell -pa DIR -run echo_server main "
              "-extra --port N [--host H]~n", [Msg]),
    halt(2).

acceptor(Listen) ->
    case gen_tcp:accept(Listen) of
        {ok, Sock} ->
            spawn(fun() -> acceptor(Listen) end),
            echo(Sock);
        {error, closed} ->
            ok;
        {error, Why} ->
            %% e.g. emfile: report it, keep accepting after a pause
            io:format(standard_error, "echo_server: accept: ~s~n", [inet:format_error(Why)]),
            timer:sleep(100),
            acceptor(Listen)
    end.

echo(Sock) ->
    case gen_tcp:recv(Sock, 0) of
        {ok, Data} ->
            case gen_tcp:send(Sock, Data) of
                ok -> echo(Sock);
                {error, _} -> gen_tcp:close(Sock)
            end;
        {error, _} ->                            % closed by the client, or reset
            gen_tcp:close(Sock)
    end.
