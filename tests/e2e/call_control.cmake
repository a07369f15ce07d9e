# Call control end to end: desktop command -> server -> CSTA -> pbxsim and back (transfer,
# consultation + conference, hold/retrieve, a call cleared while ringing).
switchboard_test(e2e_call_control_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/call_control_test.cpp
  DEPENDS switchboard_calls switchboard_csta switchboard_desk switchboard_pbxsim switchboard_test_support)
