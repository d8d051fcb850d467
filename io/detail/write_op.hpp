// SPDX-License-Identifier: MIT
// WriteOp and WritevOp: the awaiters returned by DirectFile::write and DirectFile::writev.
//
// co_await yields IoResult: the full length written, or -errno (-EIO when an O_DIRECT
// write stopped short off the alignment, so the rest could not be written). See
// transfer_op.hpp for the short-write and alignment rules.
#pragma once

#include <bioring/io/detail/transfer_op.hpp>

namespace bioring {

class DirectFile;

class WriteOp final : public detail::TransferOp {
    friend class DirectFile;
    WriteOp(const detail::FileState& f, const void* buf, std::size_t len, std::uint64_t offset,
            IoOptions&& o, WriteFlags flags = WriteFlags::none) noexcept
        // The kernel only reads a write's buffer; Operation::addr is untyped.
        : TransferOp(f, true, const_cast<void*>(buf), len, offset, std::move(o), flags) {}
};

class WritevOp final : public detail::TransferOp {
    friend class DirectFile;
    WritevOp(const detail::FileState& f, const iovec* iov, int iovcnt, std::uint64_t offset,
             IoOptions&& o, WriteFlags flags = WriteFlags::none) noexcept
        : TransferOp(f, true, iov, iovcnt, offset, std::move(o), flags) {}
};

} // namespace bioring
