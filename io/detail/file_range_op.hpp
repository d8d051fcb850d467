// SPDX-License-Identifier: MIT
// TruncateOp and SyncRangeOp: the awaiters returned by DirectFile::ftruncate and
// DirectFile::sync_file_range.
//
// co_await yields IoResult{0} or -errno. ftruncate is IORING_OP_FTRUNCATE where the kernel
// has it (Linux 6.9; Reactor::native(OpCode::ftruncate)), else the reactor thread makes the
// ftruncate(2) call itself; on the Asio backend it runs on the pool. sync_file_range starts
// (or waits for) writeback of a range; it makes nothing durable: use fdatasync for that.
#pragma once

#include <bioring/io/detail/one_shot_op.hpp>

namespace bioring {

class DirectFile;

class TruncateOp final : public detail::OneShotOp {
    friend class DirectFile;
    TruncateOp(const detail::FileState& f, std::uint64_t size, IoOptions&& o) noexcept
        : OneShotOp(f, OpCode::ftruncate, std::move(o)) {
        this->offset = size;
    }
};

class SyncRangeOp final : public detail::OneShotOp {
    friend class DirectFile;
    SyncRangeOp(const detail::FileState& f, std::uint64_t offset, std::uint32_t nbytes,
                unsigned flags, IoOptions&& o) noexcept
        : OneShotOp(f, OpCode::sync_file_range, std::move(o)) {
        this->offset = offset;
        this->len = nbytes;
        this->mode = static_cast<int>(flags);
    }
};

} // namespace bioring
