// SPDX-License-Identifier: MIT
// IoOptions: the per-request knobs every io/ awaiter accepts (deadline and cancellation).
//
// Both are optional and cost nothing when unused: a zero timeout submits no timer, and a
// default std::stop_token has no shared state, so no stop_callback is registered.
//
// Compiler note: GCC 12 can destroy a braced IoOptions temporary written inside a co_await
// operand (`co_await f.read(b, n, off, IoOptions{.stop = t})`) twice, which releases the
// stop_token's state one time too many (seen as a use-after-free under ASan). Build the
// options as a named variable and pass std::move(o) instead; bioring's own code does.
#pragma once

#include <chrono>
#include <stop_token>

namespace bioring {

struct IoOptions {
    /// Deadline for the whole request, resubmissions of short transfers included; when it
    /// passes first the request completes with -ECANCELED. Zero: no deadline.
    std::chrono::nanoseconds timeout{0};
    /// When stop is requested (from any thread) the in-flight request is cancelled and
    /// completes with -ECANCELED; a token already stopped refuses the request unsubmitted.
    std::stop_token stop{};
};

} // namespace bioring
