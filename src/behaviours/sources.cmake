# OTP behaviours built on the core: supervisor and application.
target_sources(erlcpp PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/supervisor.cpp
  ${CMAKE_CURRENT_LIST_DIR}/application.cpp
)
