# Warnings and sanitizer flags shared by every erlcpp target.
add_library(erlcpp_build_flags INTERFACE)
target_compile_options(erlcpp_build_flags INTERFACE -Wall -Wextra)
option(ERLCPP_WERROR "Treat warnings as errors (CI)" OFF)
if(ERLCPP_WERROR)
  target_compile_options(erlcpp_build_flags INTERFACE -Werror)
endif()

if(ERLCPP_SANITIZE STREQUAL "address")
  set(ERLCPP_SAN_FLAGS -fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined)
elseif(ERLCPP_SANITIZE STREQUAL "thread")
  set(ERLCPP_SAN_FLAGS -fsanitize=thread)
elseif(NOT ERLCPP_SANITIZE STREQUAL "")
  message(FATAL_ERROR "ERLCPP_SANITIZE must be '', 'address' or 'thread'")
endif()
if(ERLCPP_SAN_FLAGS)
  # Sanitizers must see every translation unit, the tests' included: set them globally.
  add_compile_options(${ERLCPP_SAN_FLAGS})
  add_link_options(${ERLCPP_SAN_FLAGS})
endif()
