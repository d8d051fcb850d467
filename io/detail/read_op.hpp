// SPDX-License-Identifier: MIT
// ReadOp and ReadvOp: the awaiters returned by DirectFile::read and DirectFile::readv.
//
// co_await yields IoResult: the bytes read (all of them unless end of file came first,
// 0 at end of file) or -errno. See transfer_op.hpp for the short-read and alignment rules.
#pragma once

#include <bioring/io/detail/transfer_op.hpp>

namespace bioring {

class DirectFile;

class ReadOp final : public detail::TransferOp {
    friend class DirectFile;
    ReadOp(const detail::FileState& f, void* buf, std::size_t len, std::uint64_t offset,
           IoOptions&& o) noexcept
        : TransferOp(f, false, buf, len, offset, std::move(o)) {}
};

class ReadvOp final : public detail::TransferOp {
    friend class DirectFile;
    ReadvOp(const detail::FileState& f, const iovec* iov, int iovcnt, std::uint64_t offset,
            IoOptions&& o) noexcept
        : TransferOp(f, false, iov, iovcnt, offset, std::move(o)) {}
};

} // namespace bioring
