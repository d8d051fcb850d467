// SPDX-License-Identifier: MIT
// Fault injection for I/O completions, driven by rules (tests, and BIORING_FAULT in any
// process built from this tree).
//
// Why a completion filter and not a wrapper backend: Reactor::complete_op() already passes
// every result through an optional filter (one predictable branch when none is set), on the
// owner thread, on both backends. Rewriting the result there is indistinguishable, for io/
// and everything above it, from the kernel returning it: an -EIO, an -ENOSPC, an -EAGAIN,
// or a short transfer. When BIORING_FAULT is unset nothing is installed and the cost is
// that branch only.
//
// Spec grammar (BIORING_FAULT, parse_fault_spec): rules separated by ';', each a list of
// comma-separated items:
//   op=read|write|fsync|fallocate|close|any   which completions the rule sees (default any;
//                                             read covers readv, write writev, fsync
//                                             fdatasync; any is all but nop and timers)
//   nth=K        fire on the K-th matching completion only (1-based, counted per rule)
//   every=N      fire on every N-th matching completion
//   p=X          fire with probability X in [0,1] ...
//   seed=S       ... from a deterministic stream seeded with S (default 1)
//                (no trigger at all: fire on every matching completion)
//   err=NAME     the action: complete with -NAME (EIO, ENOSPC, EAGAIN, EINTR, ENOMEM,
//                EBADF, EINVAL, EFBIG, EROFS, EDQUOT, ECANCELED, or a number); the default
//   short        the action: report half the bytes, rounded down to a multiple of 4096
//                (completions under 8192 bytes are left alone): a short transfer that an
//                O_DIRECT retry can continue. What the kernel moved beyond that point is
//                simply transferred again by the retry.
//   short=unaligned  exactly half (>= 2 bytes): a short O_DIRECT transfer that stops off
//                the alignment, which io/ must end (read: as end of file) or fail (write).
//   delay=US     the action: hold the reactor thread for US microseconds before delivering
//                (the completion and everything behind it in the batch arrive late).
//   hold         the action: deliver the completion on the next loop turn instead of now;
//                the completions held in one turn are delivered in reverse order, so
//                completions are both delayed and reordered.
// Only successful completions (res >= 0) are counted and rewritten: a real error passes.
// Example: BIORING_FAULT="op=write,err=ENOSPC,nth=5;op=read,short,p=0.1,seed=42".
//
// How hold works through the filter seam: the filter swaps the Operation's complete pointer
// for a trampoline (the reactor calls it at once, having already counted the completion),
// which restores the pointer and queues (op, result) on a per-thread list that is posted to
// the reactor as one RemoteTask; the next loop turn runs it, delivering newest first.
// drain() waits for posted work, so nothing held is lost at shutdown. Up to 1024 completions
// per thread are held at once; beyond that they pass unheld.
//
// Counters are process-wide relaxed atomics: several reactors (a Runtime) share one plan,
// and nth/every/p count matching completions across all of them, so a one-thread run is
// reproducible. A process that installed BIORING_FAULT prints one line at exit:
//   bioring: BIORING_FAULT="...": injected N faults in M matching completions
#pragma once

#include <bioring/runtime/operation.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bioring {

class Reactor;

enum class FaultOp : std::uint8_t { any, read, write, fsync, fallocate, close };
enum class FaultAction : std::uint8_t { error, short_transfer, delay, hold };

struct FaultRule {
    FaultOp op = FaultOp::any;
    FaultAction action = FaultAction::error;
    int err = 5;             ///< positive errno for FaultAction::error (EIO)
    std::uint64_t nth = 0;   ///< 0: unused
    std::uint64_t every = 0; ///< 0: unused
    double p = -1;           ///< < 0: unused
    std::uint64_t seed = 1;
    std::uint32_t delay_us = 0;
    bool short_unaligned = false; ///< short=unaligned: exactly half, off the 4 KiB unit
};

/// Parse a fault spec (grammar in the file comment).
/// Context: any thread; pure.
/// Returns: the rules; throws std::invalid_argument naming the bad item and the grammar.
std::vector<FaultRule> parse_fault_spec(std::string_view spec);

/// A set of rules with their counters; install() it on reactors (it must outlive them).
class FaultPlan {
public:
    explicit FaultPlan(std::vector<FaultRule> rules);
    FaultPlan(const FaultPlan&) = delete;
    FaultPlan& operator=(const FaultPlan&) = delete;

    /// Route @r's completions through this plan. Context: @r's owner thread.
    void install(Reactor& r) noexcept;
    /// The filter itself: returns the (possibly rewritten) result of @op.
    /// Context: any reactor thread; lock-free.
    int apply(const Operation& op, int res) noexcept;

    /// Returns: faults injected so far (errors, shortened transfers, delays).
    std::uint64_t injected() const noexcept { return injected_.load(std::memory_order_relaxed); }
    /// Returns: completions that matched some rule's op kind (res >= 0).
    std::uint64_t matched() const noexcept { return matched_.load(std::memory_order_relaxed); }
    const std::vector<FaultRule>& rules() const noexcept { return rules_; }

private:
    std::vector<FaultRule> rules_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_; ///< matching completions per rule
    std::atomic<std::uint64_t> injected_{0};
    std::atomic<std::uint64_t> matched_{0};
};

/// Returns: the process's plan from BIORING_FAULT (parsed on the first call), or nullptr when
/// the variable is unset or empty. Context: any thread.
/// Throws std::invalid_argument ("BIORING_FAULT: ...") for a bad spec, on every call.
FaultPlan* env_fault_plan();

namespace detail {
/// Called by every Reactor constructor: installs env_fault_plan() when there is one.
/// Throws as env_fault_plan() (so a bad spec fails the Reactor, and the app, with its text).
void install_env_faults(Reactor& r);
} // namespace detail

} // namespace bioring
