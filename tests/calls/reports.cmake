# Reports and live statistics on a real PostgreSQL (included by tests/calls/CMakeLists.txt).
switchboard_test(reports_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/reports_test.cpp DEPENDS switchboard_store switchboard_test_support)
