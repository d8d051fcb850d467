// SPDX-License-Identifier: MIT
// The file or block device a bench program reads or writes, opened and checked the same
// way by every program, so that their refusals (exit status 2) and their notion of
// "aligned" agree.
//
// DIO alignment: statx(STATX_DIOALIGN) where the filesystem reports it; else the logical
// block size of a block device; else 4096 (tmpfs accepts O_DIRECT on recent kernels but
// reports no alignment, and 4096 is safe everywhere).
#pragma once

#include <cstdint>
#include <string>

namespace bioring::bench {

/// An open file descriptor with its size and DIO alignment. Move-only; closes on destruction.
class TargetFile {
public:
    TargetFile() = default;
    /// Open @path (O_DIRECT when @direct; O_RDWR when @write).
    /// Throws UsageError (exit 2) when the path is missing, not a regular file or block
    /// device, or refuses O_DIRECT.
    static TargetFile open(const std::string& path, bool write, bool direct);
    TargetFile(TargetFile&& o) noexcept;
    TargetFile& operator=(TargetFile&& o) noexcept;
    TargetFile(const TargetFile&) = delete;
    TargetFile& operator=(const TargetFile&) = delete;
    ~TargetFile();

    int fd() const noexcept { return fd_; }
    std::uint64_t size() const noexcept { return size_; }
    std::uint32_t alignment() const noexcept { return alignment_; }
    bool is_block_device() const noexcept { return block_; }
    const std::string& path() const noexcept { return path_; }

private:
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::uint32_t alignment_ = 4096;
    bool block_ = false;
    std::string path_;
};

/// DIO offset alignment of an open fd (see the file comment). Returns: a power of two.
std::uint32_t dio_alignment(int fd, bool block_device) noexcept;

/// Check a workload against a file: bs > 0 and a multiple of @alignment (when direct), qd
/// > 0, threads > 0, and each thread's range (size / threads) holds at least one block.
/// Throws UsageError with a message naming the failing value.
void check_workload(std::uint64_t size, std::uint64_t bs, std::uint64_t qd, std::uint64_t threads,
                    std::uint32_t alignment, bool direct, const std::string& path);

/// Create (or replace) @path of @size bytes filled with pseudo-random data, written in
/// large chunks with ordinary writes, then fsync'd. Throws std::system_error.
void create_filled_file(const std::string& path, std::uint64_t size);

} // namespace bioring::bench
