// SPDX-License-Identifier: MIT
// sleep_for: a timer on the current reactor (IORING_OP_TIMEOUT, or an asio::steady_timer),
// with an optional stop_token. The awaiter lives in the frame; nothing is allocated.
#pragma once

#include <bioring/runtime/op_awaiter.hpp>

#include <chrono>
#include <stop_token>

namespace bioring {

/// `IoResult r = co_await bioring::sleep_for(10ms);`
/// Context: a coroutine on a reactor thread.
/// Returns (from co_await): 0 when the timer fired; -ECANCELED when it was cancelled
/// (@stop requested, or Reactor::cancel()); -ENXIO with no reactor on this thread.
inline OpAwaiter<true> sleep_for(std::chrono::nanoseconds d, std::stop_token stop = {}) noexcept {
    Operation op;
    op.code = OpCode::timeout;
    op.timeout_ns = d.count() > 0 ? static_cast<std::uint64_t>(d.count()) : 0;
    return OpAwaiter(op, std::move(stop));
}

} // namespace bioring
