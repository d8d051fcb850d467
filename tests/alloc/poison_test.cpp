// SPDX-License-Identifier: MIT
// ASan poisoning of free slab objects (alloc/poison.hpp): a free object is unaddressable in
// the magazine, in the depot and in a BioSet's reserve, addressable again once allocated,
// the padding past object_size never is; and a write to a freed bioset object is reported.
// Only ASan builds poison: elsewhere these tests report themselves skipped.
#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/failure_injector.hpp>
#include <bioring/alloc/detail/poison.hpp>
#include <bioring/alloc/detail/slab_cache.hpp>
#include <bioring/alloc/slab_registry.hpp>
#include "tests/support/skip.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#ifdef BIORING_ASAN
#include <sanitizer/asan_interface.h>
#endif

using namespace bioring;

namespace {

bool skip_without_asan() {
    if (!detail::asan_poisoning) {
        bioring::test::print_skip("not an ASan build: free objects are not poisoned");
        return true;
    }
    return false;
}

// Every byte of [p, p + n) poisoned / none of it.
bool poisoned(const void* p, std::size_t n) {
#ifdef BIORING_ASAN
    for (std::size_t i = 0; i < n; ++i) {
        if (!__asan_address_is_poisoned(static_cast<const char*>(p) + i)) {
            return false;
        }
    }
    return true;
#else
    (void)p;
    (void)n;
    return false;
#endif
}

bool addressable(const void* p, std::size_t n) {
#ifdef BIORING_ASAN
    return __asan_region_is_poisoned(const_cast<void*>(p), n) == nullptr;
#else
    (void)p;
    (void)n;
    return true;
#endif
}

} // namespace

TEST_SUITE("alloc") {

    TEST_CASE("free slab objects are poisoned in the magazine and the depot, live ones are not") {
        if (skip_without_asan()) {
            return;
        }
        SlabRegistry& reg = SlabRegistry::global();
        SlabCache* c = reg.find_or_create(200 + 3); // stride 256: 53 bytes of padding
        const std::size_t size = c->object_size();
        REQUIRE(c->stride() > size);

        void* p = c->alloc();
        REQUIRE(p != nullptr);
        CHECK(addressable(p, size));
        CHECK(poisoned(static_cast<char*>(p) + size, c->stride() - size)); // padding
        std::memset(p, 0xab, size);
        c->free(p); // into this thread's magazine
        CHECK(poisoned(p, size));
        void* q = c->alloc(); // the magazine is a stack: the same object comes back
        CHECK(q == p);
        CHECK(addressable(q, size));

        // More than a magazine holds: the frees beyond its limit go to the depot, and objects
        // refilled into the magazine from the depot are poisoned there too.
        std::vector<void*> objs{q};
        const std::size_t n = 3 * (c->magazine_cap() + c->magazine_slack());
        for (std::size_t i = 1; i < n; ++i) {
            objs.push_back(c->alloc());
            REQUIRE(objs.back() != nullptr);
            CHECK(addressable(objs.back(), size));
        }
        for (void* o : objs) {
            c->free(o);
        }
        for (void* o : objs) {
            CHECK(poisoned(o, size));
        }
        c->drain_this_thread(); // everything to the depot, linked through the first word
        for (void* o : objs) {
            CHECK(poisoned(o, size));
        }
        std::vector<void*> again;
        for (std::size_t i = 0; i < n; ++i) {
            again.push_back(c->alloc());
            REQUIRE(again.back() != nullptr);
            CHECK(addressable(again.back(), size));
            std::memset(again.back(), 0xcd, size);
        }
        c->free_batch(again.data(), again.size()); // straight to the depot
        for (void* o : again) {
            CHECK(poisoned(o, size));
        }
        reg.put(c);
    }

    TEST_CASE("a BioSet's reserve objects are poisoned until they are handed out") {
        if (skip_without_asan()) {
            return;
        }
        struct Off {
            ~Off() { FailureInjector::off(); }
        } off;
        constexpr std::size_t pool = 8;
        constexpr std::size_t pad = 7 * 64;
        BioSet bs(pool, pad);
        FailureInjector::fail_always(); // the cache cannot grow: the reserve must serve
        std::vector<Bio*> held;
        std::size_t from_reserve = 0;
        while (Bio* b = bs.alloc()) {
            CHECK(addressable(b->front(), pad + sizeof(Bio)));
            from_reserve += (b->alloc_flags & BioSet::flag_reserve) != 0;
            held.push_back(b);
            REQUIRE(held.size() < 100000);
        }
        CHECK(from_reserve == pool);
        for (Bio* b : held) {
            void* front = b->front();
            bs.free(b); // the first pool frees refill the reserve
            CHECK(poisoned(front, pad + sizeof(Bio)));
        }
        CHECK(bs.stats().reserve_nr == pool);
    }

    TEST_CASE("a write to a freed bioset object is reported by ASan") {
        if (skip_without_asan()) {
            return;
        }
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            ::dup2(fds[1], 2);
            ::close(fds[0]);
            BioSet bs(2, 256);
            Bio* b = bs.alloc();
            auto* front = static_cast<volatile char*>(b->front());
            bs.free(b);
            front[8] = 1; // the frame of a request already completed and freed
            ::_exit(0);   // not reached: ASan reports and exits non-zero
        }
        ::close(fds[1]);
        std::string err;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
            err.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fds[0]);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CAPTURE(err);
        CHECK(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
        CHECK(err.find("use-after-poison") != std::string::npos);
    }

} // TEST_SUITE
