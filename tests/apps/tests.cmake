# SPDX-License-Identifier: MIT
# apps tests: link the apps' libraries and learn where the app binaries are. In a tree
# configured without the apps (BIORING_BUILD_APPS=OFF, e.g. the TSan flavour) they cannot
# be built: they are left out of `all`, and ctest lists them only as unlabelled *_NOT_BUILT
# entries, which label filters such as -L 'alloc|runtime' skip.
set(bioring_apps_tests apps_args_test apps_safe_output_test apps_progress_test apps_copy_test
                       apps_pipeline_test
                       apps_crypt_test apps_xts_test)
foreach(t ${bioring_apps_tests})
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
