// SPDX-License-Identifier: MIT
// The one way a test says it cannot run here. ctest marks a case whose output contains
// "BIORING-SKIP:" as skipped (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), so a skipped
// case must not run any check after printing the marker: a check that runs in a skipped case
// can never make it fail. BIORING_SKIP prints and returns from the test case at once.
#pragma once

#include <cstdio>
#include <string>

namespace bioring::test {

/// Print the ctest skip marker with @why. Prefer BIORING_SKIP in a test body; call this
/// directly only from a helper that then tells its caller to return (e.g. open_or_skip).
inline void print_skip(const std::string& why) {
    std::printf("BIORING-SKIP: %s\n", why.c_str());
    std::fflush(stdout);
}

} // namespace bioring::test

/// Skip the current test case: print the marker and return (from a void function).
#define BIORING_SKIP(why)                                                                          \
    do {                                                                                           \
        ::bioring::test::print_skip(why);                                                          \
        return;                                                                                    \
    } while (false)
