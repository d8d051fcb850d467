# SPDX-License-Identifier: MIT
# nbd tests: they link the NBD library (wire format, block layers) and learn where
# bioring-nbd and bioring-crypt are. In a tree without the apps they are left out of `all`
# (as tests/apps are, see bioring_use_apps).
file(GLOB nbd_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/nbd/*_test.cpp)
foreach(src ${nbd_tests})
    get_filename_component(base ${src} NAME_WE)
    if(TARGET bioring_apps_nbd)
        target_link_libraries(nbd_${base} PRIVATE bioring_apps_nbd)
        if(TARGET bioring-nbd)
            target_compile_definitions(nbd_${base} PRIVATE
                BIORING_NBD_EXE="$<TARGET_FILE:bioring-nbd>")
            add_dependencies(nbd_${base} bioring-nbd)
        endif()
    endif()
endforeach()
if(TARGET nbd_clients_test)
    target_compile_definitions(nbd_clients_test PRIVATE
        BIORING_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
