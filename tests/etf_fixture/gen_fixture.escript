#!/usr/bin/env escript
%% Regenerates terms.txt, the External Term Format fixture of tests/test_etf_fixture.cpp:
%%   escript tests/etf_fixture/gen_fixture.escript tests/etf_fixture/terms.txt
%% One line per term: Class <TAB> hex(term_to_binary(T, Opts)) <TAB> io_lib:format("~w", [T])
%%   C  canonical: erlcpp must decode it to the parsed text and re-encode the same bytes
%%   N  a valid but not canonical encoding (compressed, legacy atoms, big maps in hash order):
%%      decode to the parsed text; our re-encoding must decode to the same term
%%   O  opaque (pids, refs, ports, closures; the text does not parse): decode, and re-encode
%%      the same bytes
-mode(compile).

main([Out]) ->
    Lines = [line(C, T, Opts) || {C, T, Opts} <- cases()],
    ok = file:write_file(Out, unicode:characters_to_binary(Lines)),
    io:format("~b terms written to ~s~n", [length(Lines), Out]).

line(Class, T, Opts) ->
    Bin = term_to_binary(T, Opts),
    T = binary_to_term(Bin),
    Text = case Class of
               $O -> "-";
               _ -> io_lib:format("~w", [T])
           end,
    [Class, $\t, binary:encode_hex(Bin), $\t, Text, $\n].

v2() -> [{minor_version, 2}].

canon(T) ->
    case has_big_map(T) of
        true -> {$N, T, v2()};
        false -> {$C, T, v2()}
    end.

has_big_map(M) when is_map(M) ->
    map_size(M) > 32 orelse lists:any(fun has_big_map/1, maps:keys(M) ++ maps:values(M));
has_big_map(T) when is_tuple(T) -> has_big_map(tuple_to_list(T));
has_big_map([H | T]) -> has_big_map(H) orelse has_big_map(T);
has_big_map(_) -> false.

%% Pids, ports and references of a named node, built from their external form.
node_atom() -> <<119, 14, "fixture@erlcpp">>.
ext_pid(Id, Serial, Creation) ->
    binary_to_term(<<131, 88, (node_atom())/binary, Id:32, Serial:32, Creation:32>>).
ext_port(Id, Creation) ->
    binary_to_term(<<131, 89, (node_atom())/binary, Id:32, Creation:32>>).
ext_ref(Words, Creation) ->
    binary_to_term(<<131, 90, (length(Words)):16, (node_atom())/binary, Creation:32,
                     (<< <<W:32>> || W <- Words >>)/binary>>).

cases() ->
    Ints = [0, 1, -1, 127, 128, 255, 256, -256, 65535, 65536, 1 bsl 27, -(1 bsl 27) - 1,
            (1 bsl 31) - 1, -(1 bsl 31), 1 bsl 31, -(1 bsl 31) - 1, 1 bsl 32, 1 bsl 62,
            (1 bsl 63) - 1, -(1 bsl 63), 1 bsl 63, -(1 bsl 63) - 1, 1 bsl 64, -(1 bsl 64),
            (1 bsl 64) - 1, 1 bsl 100, -(1 bsl 100), 1 bsl 2039, -(1 bsl 2039), 1 bsl 2040,
            1 bsl 4000, -(1 bsl 4000) + 12345, 123456789012345678901234567890,
            1 bsl 24, -(1 bsl 24), 1000000000000000000, 10000000000000000000,
            -10000000000000000000, (1 bsl 255) - 1, -(1 bsl 255), 1 bsl 2031, 4294967295,
            -4294967296, 2147483648, 3, -3, 42, -42, 1000, -1000],
    Floats = [0.0, -0.0, 1.0, -1.0, 0.1, 1.5, 1.0e20, 1.0e-20, 3.141592653589793,
              2.2250738585072014e-308, 5.0e-324, 2.225073858507201e-308, 1.7976931348623157e308,
              -1.7976931348623157e308, 123456.789, 1.0e15, 1.0e16, 9007199254740993.0, 0.001,
              100.0, 1000.0, 12340.0, 123400.0, 1.0e-5, 0.0001, 1.0e-10, 2.5e-5, -2.5e-5,
              4.9406564584124654e-324, 1.0e100, 0.30000000000000004, 1.0e21, 1.0e22, 7.0],
    Atoms = [ok, error, 'hello world', '', 'Ok', 'it\'s', 'with\nnewline', 'é', 'ünïcödé',
             '日本語', list_to_atom(lists:duplicate(255, $a)),
             list_to_atom(lists:duplicate(255, 16#65E5)), true, false, undefined, 'nonode@nohost',
             'after', '[]', '{}', 'a-b', aB_1@x],
    Strings = ["", "a", "hello", "hello\nworld", [0, 255, 128], lists:seq(0, 255),
               lists:duplicate(300, $x), [256, 1000], [-1, 0], [255, 256],
               [16#1F600], "tab\there"],
    Bins = [<<>>, <<"bin">>, <<0, 1, 2, 255>>, <<"with \"quotes\" and \\">>,
            list_to_binary(lists:seq(0, 255)), binary:copy(<<"abc">>, 1000),
            <<"é"/utf8>>, <<1:1>>, <<3:2>>, <<5:3>>, <<9:4>>, <<17:5>>, <<33:6>>, <<65:7>>,
            <<1, 2, 3:4>>, <<"abc", 1:1>>, <<255, 254:7>>, <<0:7>>, <<0:1>>,
            list_to_bitstring([binary:copy(<<1>>, 300), <<1:3>>]), <<"\r\t\e\v\b\f">>,
            <<"a\0b">>],
    Tuples = [{}, {a}, {ok, 1}, {error, {reason, "text"}}, list_to_tuple(lists:seq(1, 255)),
              list_to_tuple(lists:seq(1, 256)), list_to_tuple(lists:seq(1, 300)),
              {{{{{{{{{{deep}}}}}}}}}}],
    Lists = [[], [a], [1, 2, 3], [a, b | c], [1 | 2], [[]], [[], []], [a, {b, [c]}],
             [1.0, -1, "s", <<"b">>], [a | <<"tail">>], lists:seq(1, 2000),
             [x | 1.5], lists:duplicate(300, {k, v})],
    Maps = [#{}, #{a => 1}, #{1 => a, 1.0 => b}, #{<<"k">> => [v], {t} => #{n => m}},
            maps:from_list([{I, I * I} || I <- lists:seq(1, 32)]),
            maps:from_list([{I, I * I} || I <- lists:seq(1, 33)]),
            maps:from_list([{integer_to_list(I), I} || I <- lists:seq(1, 100)]),
            #{a => #{b => #{c => #{}}}}, #{[1, 2] => "list key", -0.0 => zero},
            #{1 => int, 1.0 => float, a => atom, {} => tuple, [] => nil, [a] => list,
              <<>> => bin, #{} => map, "s" => str},
            maps:from_list([{list_to_atom([$k | integer_to_list(I)]), I} || I <- lists:seq(1, 40)])],
    Deep = [lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 200)),
            lists:foldl(fun(_, Acc) -> {Acc} end, x, lists:seq(1, 200))],
    Exports = [fun lists:map/2, fun erlang:self/0, fun 'weird mod':'f f'/255],
    Mixed = [{zoo, [1, -1, 1 bsl 70, -(1 bsl 70)], [0.5, -0.0], ['latin', 'ünï'],
              "charlist", [a | b], <<"bin">>, <<7:3>>, #{k => [#{}]}, fun lists:map/2}],
    Y = 42,
    Closure = fun(X) -> X + Y end,
    Closure0 = fun() -> ok end,
    Opaque = [self(), make_ref(), hd(erlang:ports()), ext_pid(1, 0, 1), ext_pid(16#FFFFFFF, 0, 7),
              ext_pid(12345, 3, 16#ABCDEF01), ext_port(77, 3), ext_ref([1, 2, 3], 5),
              ext_ref([1, 2, 3, 4, 5], 5), ext_ref([9], 1), Closure, Closure0,
              {pid, self(), [make_ref()], #{port => hd(erlang:ports())}}],
    [canon(T) || T <- Ints ++ Floats ++ Atoms ++ Strings ++ Bins ++ Tuples ++ Lists ++ Maps ++
                      Deep ++ Exports ++ Mixed]
    ++ [{$O, T, v2()} || T <- Opaque]
    %% What term_to_binary/1 sends without options: ATOM_EXT (100) atoms in OTP 25.
    ++ [{$N, T, []} || T <- [ok, 'é', {ok, [a, b]}, #{a => 1}, 1.5, fun lists:map/2]]
    %% Legacy FLOAT_EXT (99).
    ++ [{$N, T, [{minor_version, 0}]} || T <- [1.5, -0.0, 1.0e300, 0.1]]
    %% Compressed (tag 80), at several levels.
    ++ [{$N, T, [compressed]} || T <- [lists:duplicate(1000, ok), binary:copy(<<"z">>, 5000),
                                        lists:seq(1, 5000), {small}]]
    ++ [{$N, lists:duplicate(100, {a, b}), [{compressed, L}]} || L <- [1, 9]].
