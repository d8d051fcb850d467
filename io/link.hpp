// SPDX-License-Identifier: MIT
// Linked requests: `co_await link(step, step, ...)` submits a chain of requests at once
// (io_uring IOSQE_IO_LINK): each step starts only after the previous one succeeded, so
// write -> fdatasync costs one round trip (one io_uring_enter) instead of two.
//
// Steps come from DirectFile::write_step, read_step, fdatasync_step, ... and are plain
// values (a prepared Operation): the chain lives in the LinkOp, in the awaiting
// coroutine's frame, and nothing is allocated per chain. co_await yields one IoResult per
// step, in order:
//   - a step that ran and succeeded: its full length (reads, writes) or 0 (the others);
//   - the step that ended the chain early: its result, -errno, or a SHORT count (a read
//     or write that moved less than asked fails the chain: compare with the length);
//   - the steps after it: -ECANCELED (they never ran).
// A step refused before submission (closed file -EBADF, misaligned O_DIRECT -EINVAL,
// unknown write flags -EINVAL) makes the whole chain complete at once with that error for
// the step and -ECANCELED for every other step: nothing is submitted.
// On a failure last_error_message() names the step, the file and the reason.
// Semantics are the same on both backends (Reactor::submit_link): the Asio backend runs
// the steps in order on one pool thread and applies the same success rule.
// NOT SUPPORTED in chains: per-step deadlines and stop_token cancellation (a LINK_TIMEOUT
// inside a chain bounds a single step and posts CQEs of its own), short-transfer
// resubmission (a short step ends the chain; retry it yourself), EINTR/EAGAIN retries
// (reported as the step's result). Chains have 1 to Reactor::max_link (8) steps.
#pragma once

#include <bioring/io/detail/file_state.hpp>
#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>

#include <array>
#include <coroutine>
#include <cstdint>
#include <type_traits>

namespace bioring {

namespace detail {
class LinkBase;
}

/// One prepared step of a chain. Build it with a DirectFile::*_step() member; it refers to
/// the file and the buffer, which must stay valid until the chain's co_await returns.
class LinkStep {
public:
    /// Internal (builders): @op as it will be submitted (fd resolved at co_await), @expect
    /// the result reported for it when a later step ended the chain, @error a refusal
    /// found while building (0: none; the message is already set).
    LinkStep(const Operation& op, const detail::FileState* file, const char* name,
             std::uint64_t expect, int error) noexcept
        : op_(op), file_(file), name_(name), expect_(expect), error_(error) {}

private:
    friend class detail::LinkBase;
    Operation op_; // first: the completion finds the step from it
    const detail::FileState* file_;
    const char* name_;
    std::uint64_t expect_;
    int error_;
    unsigned index_ = 0;                // set at co_await
    detail::LinkBase* owner_ = nullptr; // set at co_await
};
static_assert(std::is_standard_layout_v<LinkStep>, "on_complete casts Operation* to LinkStep*");

namespace detail {

class LinkBase {
protected:
    LinkBase() noexcept = default;
    /// Returns: true (results set, nothing submitted) when a step was refused.
    bool ready(LinkStep* steps, IoResult* results, unsigned n) noexcept;
    /// Submit the chain. Returns: false (results set) when it could not be submitted.
    bool suspend(std::coroutine_handle<> waiter, LinkStep* steps, IoResult* results,
                 unsigned n) noexcept;

private:
    static void on_complete(Operation* op, int res) noexcept;
    void fill(LinkStep* steps, unsigned end, int res) noexcept;

    std::coroutine_handle<> waiter_{};
    LinkStep* steps_ = nullptr;
    IoResult* results_ = nullptr;
    unsigned n_ = 0;
};

} // namespace detail

/// The awaiter of link(): holds the steps and their results.
template <std::size_t N>
class LinkOp : private detail::LinkBase {
public:
    static_assert(N >= 1 && N <= Reactor::max_link, "a chain has 1 to Reactor::max_link steps");
    explicit LinkOp(const std::array<LinkStep, N>& steps) noexcept : steps_(steps) {}

    bool await_ready() noexcept { return ready(steps_.data(), results_.data(), N); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
        return suspend(h, steps_.data(), results_.data(), N);
    }
    /// Returns: one IoResult per step (see the header comment).
    std::array<IoResult, N> await_resume() const noexcept { return results_; }

private:
    std::array<LinkStep, N> steps_;
    std::array<IoResult, N> results_{};
};

/// `auto [w, s] = co_await link(f.write_step(buf, n, off), f.fdatasync_step());`
/// Context: a coroutine on a reactor thread; suspends; allocates nothing.
/// Returns (co_await): std::array<IoResult, N>, as the header comment says; every step
/// -ENXIO with no reactor on this thread; -EINVAL / -EOPNOTSUPP for every step when the
/// reactor refuses the chain (Reactor::submit_link).
template <class... Steps>
requires(std::is_same_v<std::remove_cvref_t<Steps>, LinkStep>&&...) LinkOp<sizeof...(Steps)> link(
    Steps&&... steps)
noexcept {
    return LinkOp<sizeof...(Steps)>(std::array<LinkStep, sizeof...(Steps)>{steps...});
}

} // namespace bioring
