# SPDX-License-Identifier: MIT
# alloc_bench: BioSet vs glibc malloc vs mimalloc vs Asio's recycling_allocator, alloc+free
# pairs of 256 B and 1 KiB, on one thread and producer/consumer across two.
# Included by bench/CMakeLists.txt when present.
find_package(benchmark REQUIRED)
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_executable(alloc_bench ${CMAKE_CURRENT_LIST_DIR}/alloc_bench.cpp)
target_include_directories(alloc_bench SYSTEM PRIVATE ${ASIO_INCLUDE_DIR})
target_compile_definitions(alloc_bench PRIVATE ASIO_STANDALONE ASIO_NO_DEPRECATED)
target_link_libraries(alloc_bench PRIVATE bioring::alloc benchmark::benchmark ${CMAKE_DL_LIBS}
                      Threads::Threads)
