# SPDX-License-Identifier: MIT
# reliability tests: the ones that drive the app binaries or call the apps' pipeline link the
# apps' libraries and learn where the binaries are. A tree built without the apps (the TSan
# flavour) leaves them out of `all` (ctest lists them as *_NOT_BUILT, which -L filters skip).
# bioring-soak is the opt-in soak program (tests/soak.sh), not a ctest test.
file(GLOB bioring_reliability_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_test.cpp)
foreach(src ${bioring_reliability_tests})
    get_filename_component(base ${src} NAME_WE)
    set(t reliability_${base})
    if(NOT TARGET ${t})
        continue()
    endif()
    if(TARGET bioring-copy AND TARGET bioring-crypt)
        target_link_libraries(${t} PRIVATE bioring_apps_common bioring_apps_xts)
        target_compile_definitions(${t} PRIVATE
            BIORING_COPY_EXE="$<TARGET_FILE:bioring-copy>"
            BIORING_CRYPT_EXE="$<TARGET_FILE:bioring-crypt>")
        add_dependencies(${t} bioring-copy bioring-crypt)
    else()
        set_target_properties(${t} PROPERTIES EXCLUDE_FROM_ALL TRUE)
    endif()
endforeach()

if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/soak_main.cpp)
    add_executable(bioring-soak ${CMAKE_CURRENT_LIST_DIR}/soak_main.cpp)
    target_link_libraries(bioring-soak PRIVATE bioring::io)
    target_include_directories(bioring-soak PRIVATE ${PROJECT_SOURCE_DIR})
endif()
