# erl::term, conversions, matching and the External Term Format codec; included by
# src/CMakeLists.txt. Needs zlib (Debian: zlib1g-dev) for compressed terms (tag 80).
find_package(ZLIB REQUIRED)
target_sources(erlcpp PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/bigint.cpp
  ${CMAKE_CURRENT_LIST_DIR}/term.cpp
  ${CMAKE_CURRENT_LIST_DIR}/term_format.cpp
  ${CMAKE_CURRENT_LIST_DIR}/term_parse.cpp
  ${CMAKE_CURRENT_LIST_DIR}/term_match.cpp
  ${CMAKE_CURRENT_LIST_DIR}/term_convert.cpp
  ${CMAKE_CURRENT_LIST_DIR}/etf.cpp
)
target_link_libraries(erlcpp PRIVATE ZLIB::ZLIB)

# erlcpp-etf: decode / encode / recode ETF on stdin/stdout.
add_executable(erlcpp-etf ${CMAKE_CURRENT_LIST_DIR}/erlcpp_etf.cpp)
target_link_libraries(erlcpp-etf PRIVATE erlcpp erlcpp_build_flags)
if(ERLCPP_INSTALL)
  include(GNUInstallDirs)
  install(TARGETS erlcpp-etf RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# libFuzzer target for etf::decode (clang only): -DERLCPP_FUZZ=ON.
option(ERLCPP_FUZZ "Build the libFuzzer targets for the ETF and distribution decoders (clang)" OFF)
if(ERLCPP_FUZZ)
  add_executable(erlcpp_fuzz_etf ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_etf_decode.cpp)
  target_link_libraries(erlcpp_fuzz_etf PRIVATE erlcpp erlcpp_build_flags)
  target_compile_options(erlcpp_fuzz_etf PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(erlcpp_fuzz_etf PRIVATE -fsanitize=fuzzer,address,undefined)
  # The distribution protocol's decoders (EPMD replies, handshake, packets): src/dist.
  add_executable(erlcpp_fuzz_dist ${PROJECT_SOURCE_DIR}/tests/fuzz/fuzz_dist.cpp)
  target_link_libraries(erlcpp_fuzz_dist PRIVATE erlcpp erlcpp_build_flags)
  target_include_directories(erlcpp_fuzz_dist PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(erlcpp_fuzz_dist PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(erlcpp_fuzz_dist PRIVATE -fsanitize=fuzzer,address,undefined)
  # The library must be instrumented too, or the fuzzer sees no coverage inside the decoder.
  target_compile_options(erlcpp PRIVATE -fsanitize=fuzzer-no-link,address,undefined)
endif()
