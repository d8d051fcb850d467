// SPDX-License-Identifier: MIT
// FallocateOp: the awaiter returned by DirectFile::fallocate.
//
// co_await yields IoResult{0} or -errno (e.g. -EOPNOTSUPP for a mode the filesystem lacks).
// Preallocating before O_DIRECT writes keeps extending writes off the slow path.
#pragma once

#include <bioring/io/detail/one_shot_op.hpp>

namespace bioring {

class DirectFile;

class FallocateOp final : public detail::OneShotOp {
    friend class DirectFile;
    FallocateOp(const detail::FileState& f, int mode, std::uint64_t offset, std::uint64_t length,
                IoOptions&& o) noexcept
        : OneShotOp(f, OpCode::fallocate, std::move(o)) {
        this->mode = mode;
        this->offset = offset;
        this->length = length;
    }
};

} // namespace bioring
