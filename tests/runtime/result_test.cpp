// SPDX-License-Identifier: MIT
// IoResult and Result<T>: expected outcomes as values, with std::expected's spellings.
#include <bioring/runtime/result.hpp>

#include <ostream> // doctest prints std::error_code through it

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

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

TEST_CASE("a Result holds a value or an error and value() throws the error") {
    Result<std::string> v(std::string("data"));
    CHECK(v.has_value());
    CHECK(*v == "data");
    CHECK(v->size() == 4);
    CHECK(v.value_or("x") == "data");
    Result<std::string> e = unexpected(std::errc::no_space_on_device);
    CHECK_FALSE(e.has_value());
    CHECK_FALSE(static_cast<bool>(e));
    CHECK(e.error() == std::errc::no_space_on_device);
    CHECK(e.value_or("fallback") == "fallback");
    CHECK_THROWS_AS(e.value(), std::system_error);
    Result<std::string> copy = e;
    CHECK(copy.error() == e.error());
    copy = v;
    CHECK(copy.value() == "data");
    Result<void> ok;
    CHECK(ok.has_value());
    ok.value();
    Result<void> failed = unexpected(std::make_error_code(std::errc::timed_out));
    CHECK_THROWS_AS(failed.value(), std::system_error);
}

} // TEST_SUITE
