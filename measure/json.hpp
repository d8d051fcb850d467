// SPDX-License-Identifier: MIT
// JSON string quoting for the one-line JSON summaries of the apps and benchmark programs.
#pragma once

#include <string>

namespace bioring::measure {

/// Quote @s as a JSON string (escapes quotes, backslashes and control characters; other
/// bytes pass through unchanged). Context: any thread; allocates the result.
std::string json_string(const std::string& s);

} // namespace bioring::measure
