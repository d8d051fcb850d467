// SPDX-License-Identifier: MIT
#include "apps/common/format.hpp"

#include <cstdarg>
#include <cstdio>

namespace bioring::apps {

std::string format(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list again;
    va_copy(again, ap);
    const int n = std::vsnprintf(nullptr, 0, fmt, ap);
    va_end(ap);
    std::string out;
    if (n > 0) {
        out.resize(static_cast<std::size_t>(n));
        // vsnprintf writes the terminating NUL into out[n], which resize() keeps valid.
        std::vsnprintf(out.data(), out.size() + 1, fmt, again);
    }
    va_end(again);
    return out;
}

} // namespace bioring::apps
