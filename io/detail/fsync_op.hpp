// SPDX-License-Identifier: MIT
// FsyncOp: the awaiter returned by DirectFile::fsync and DirectFile::fdatasync.
//
// co_await yields IoResult{0} once the file's data (fdatasync) or data and metadata
// (fsync) are durable, or -errno. O_DIRECT bypasses the page cache but not the device's
// volatile cache or the file's metadata, so a durable write still needs one of these
// (or OpenOptions::dsync).
#pragma once

#include <bioring/io/detail/one_shot_op.hpp>

namespace bioring {

class DirectFile;

class FsyncOp final : public detail::OneShotOp {
    friend class DirectFile;
    FsyncOp(const detail::FileState& f, bool datasync, IoOptions&& o) noexcept
        : OneShotOp(f, datasync ? OpCode::fdatasync : OpCode::fsync, std::move(o)) {}
};

} // namespace bioring
