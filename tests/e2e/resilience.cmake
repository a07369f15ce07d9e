# Resilience: the real `switchboard` and `switchboard-pbxsim` executables as child processes, the
# server killed and restarted mid-shift, the PBX link dropped mid-shift. SERIAL: two ASan
# processes plus a dozen desktops under load want the machine to themselves.
switchboard_test(resilience_test SERIAL SOURCES resilience_test.cpp
  DEPENDS switchboard_desk switchboard_test_support)
add_dependencies(resilience_test switchboard switchboard-pbxsim)
target_compile_definitions(resilience_test PRIVATE
  SWITCHBOARD_BINARY="$<TARGET_FILE:switchboard>" PBXSIM_BINARY="$<TARGET_FILE:switchboard-pbxsim>")
