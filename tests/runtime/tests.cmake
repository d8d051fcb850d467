# SPDX-License-Identifier: MIT
# runtime tests: the one-allocation proof counts every malloc-family call of its binary by
# wrapping them at link time (-Wl,--wrap); global operator new/delete are replaced in the
# test source itself.
if(TARGET runtime_alloc_count_test)
    target_link_options(runtime_alloc_count_test PRIVATE
        -Wl,--wrap=malloc -Wl,--wrap=free -Wl,--wrap=calloc -Wl,--wrap=realloc
        -Wl,--wrap=posix_memalign -Wl,--wrap=aligned_alloc -Wl,--wrap=memalign)
endif()
