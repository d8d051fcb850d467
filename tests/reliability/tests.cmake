# SPDX-License-Identifier: MIT
# bioring-soak is the opt-in soak program (tests/soak.sh), not a ctest test. (The apps
# wiring of the reliability tests is in tests/CMakeLists.txt, shared with tests/apps.)
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/soak_main.cpp)
    add_executable(bioring-soak ${CMAKE_CURRENT_LIST_DIR}/soak_main.cpp)
    target_link_libraries(bioring-soak PRIVATE bioring::io)
    target_include_directories(bioring-soak PRIVATE ${PROJECT_SOURCE_DIR})
endif()
