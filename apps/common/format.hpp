// SPDX-License-Identifier: MIT
// printf-style formatting into a std::string, for the apps' messages and summaries.
#pragma once

#include <string>

namespace bioring::apps {

/// Returns: the formatted text, whatever its length (nothing is truncated).
/// Context: any thread; allocates.
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace bioring::apps
