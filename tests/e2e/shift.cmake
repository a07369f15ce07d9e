# A simulated shift: thousands of generated calls, 50 operators, overload (included by
# tests/e2e/CMakeLists.txt). Serial: it keeps both cores busy for about a minute.
switchboard_test(e2e_shift_test SERIAL SOURCES ${CMAKE_CURRENT_LIST_DIR}/shift_test.cpp
  DEPENDS switchboard_calls switchboard_csta switchboard_desk switchboard_pbxsim switchboard_test_support)
