# One place for the compile settings of our own targets: warnings are errors here,
# never in third-party headers (those come in as SYSTEM include dirs through imported targets).
function(switchboard_target target)
  # Designated initializers leave members at their defaults on purpose: no missing-initializer noise.
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror -Wno-missing-field-initializers)
  target_compile_definitions(${target} PUBLIC
    BOOST_ASIO_SEPARATE_COMPILATION      # Asio is compiled once, in src/asio.cpp
    BOOST_ASIO_NO_DEPRECATED
    PQXX_HAVE_OPTIONAL)                  # Debian's libpqxx 6.4 config header lacks it
endfunction()

# A static library for one part: src/<part>/*.cpp with headers in include/switchboard/<part>/.
function(switchboard_part part)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS" ${ARGN})
  add_library(switchboard_${part} STATIC ${ARG_SOURCES})
  target_include_directories(switchboard_${part} PUBLIC ${PROJECT_SOURCE_DIR}/include)
  target_link_libraries(switchboard_${part} PUBLIC ${ARG_DEPENDS})
  switchboard_target(switchboard_${part})
endfunction()

# A GoogleTest executable registered with CTest; discovery runs at test time, not build time.
function(switchboard_test name)
  cmake_parse_arguments(ARG "SERIAL" "" "SOURCES;DEPENDS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPENDS} GTest::gtest GTest::gmock GTest::gtest_main)
  switchboard_target(${name})
  set(props LABELS ${name} ENVIRONMENT "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/lsan.supp")
  if(ARG_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60 PROPERTIES ${props})
endfunction()
