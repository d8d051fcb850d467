// SPDX-License-Identifier: MIT
// ReactorCounters: what one reactor did, readable by apps and bench. Each reactor writes
// its own counters on its own thread only (plain integers, no atomics on the hot path);
// Runtime::counters() reads them from another thread after a run_on_all barrier or at
// shutdown, so reads are ordered by that synchronisation, not by the counters themselves.
#pragma once

#include <cstdint>

namespace bioring {

struct ReactorCounters {
    std::uint64_t sqes_submitted = 0; ///< SQEs handed to the kernel (incl. link timeouts, cancels)
    std::uint64_t cqes_reaped = 0;    ///< CQEs consumed from the completion ring
    std::uint64_t enter_calls = 0;    ///< io_uring_enter syscalls (see Reactor::counters())
    std::uint64_t requests_allocated = 0; ///< coroutine frames placed in a bioset object
    std::uint64_t reserve_hits = 0;       ///< of those, objects served from the bioset's reserve
    std::uint64_t ops_completed = 0;      ///< Operation::complete() calls
    /// Zero-copy send notifications (IORING_CQE_F_NOTIF): buffers the kernel gave back.
    std::uint64_t zc_notifications = 0;

    ReactorCounters& operator+=(const ReactorCounters& o) noexcept {
        sqes_submitted += o.sqes_submitted;
        cqes_reaped += o.cqes_reaped;
        enter_calls += o.enter_calls;
        requests_allocated += o.requests_allocated;
        reserve_hits += o.reserve_hits;
        ops_completed += o.ops_completed;
        zc_notifications += o.zc_notifications;
        return *this;
    }
};

} // namespace bioring
