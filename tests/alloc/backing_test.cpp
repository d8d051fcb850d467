// SPDX-License-Identifier: MIT
// The backing allocator is chosen (and libmimalloc dlopen()ed) before main, while the
// process has a single thread: a dlopen racing thread creation can leave a new thread with
// uninitialised mimalloc TLS (see alloc/backing.cpp). This file holds one test case, run
// before anything in this executable has asked the backing for memory.
#include <bioring/alloc/detail/backing.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>

TEST_SUITE("alloc") {

    TEST_CASE("the backing allocator is loaded before main, so no thread can race its dlopen") {
        // Nothing above this line touched bioring: only static initialisation can have loaded it.
        void* loaded = ::dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_NOLOAD);
        const std::string name = bioring::detail::backing_name();
        INFO("backing: " << name);
#ifdef BIORING_SANITIZED
        // Not a skip: what a sanitizer build must do (never load mimalloc) is checked here.
        CHECK(loaded == nullptr);
        CHECK(name.find("sanitizer build") != std::string::npos);
#else
        const char* env = std::getenv("BIORING_BACKING");
        if (env != nullptr && std::strcmp(env, "system") == 0) {
            CHECK(loaded == nullptr);
            CHECK(name.find("BIORING_BACKING=system") != std::string::npos);
        } else {
            REQUIRE(loaded != nullptr); // libmimalloc-dev is a build dependency: it is installed
            CHECK(name.rfind("mimalloc ", 0) == 0);
            ::dlclose(loaded); // drops the NOLOAD reference only; the library stays loaded
        }
#endif
    }

} // TEST_SUITE
