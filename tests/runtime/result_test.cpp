// SPDX-License-Identifier: MIT
// IoResult: an I/O outcome as a value (bytes or -errno).
#include <bioring/runtime/result.hpp>

#include <ostream> // doctest prints std::error_code through it

#include <doctest/doctest.h>

#include <cerrno>

using namespace bioring;

TEST_SUITE("runtime") {

    TEST_CASE("an IoResult is bytes when non-negative and an errno when negative") {
        IoResult ok{4096};
        CHECK(ok.ok());
        CHECK(static_cast<bool>(ok));
        CHECK(ok.bytes() == 4096);
        CHECK_FALSE(ok.error());
        IoResult bad{-EIO};
        CHECK_FALSE(bad.ok());
        CHECK(bad.bytes() == 0);
        CHECK(bad.error() == std::errc::io_error);
        CHECK(IoResult{-ECANCELED}.error() == std::errc::operation_canceled);
    }

} // TEST_SUITE
