# SPDX-License-Identifier: MIT
# bioring-wal tests: they link the WAL format library and learn where the program is.
foreach(t apps_wal_format_test apps_wal_test apps_wal_crash_test)
    if(TARGET ${t} AND TARGET bioring-wal)
        target_link_libraries(${t} PRIVATE bioring_apps_wal)
        target_compile_definitions(${t} PRIVATE BIORING_WAL_EXE="$<TARGET_FILE:bioring-wal>")
        add_dependencies(${t} bioring-wal)
    endif()
endforeach()
