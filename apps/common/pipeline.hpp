// SPDX-License-Identifier: MIT
// The request pipeline shared by bioring-copy and bioring-crypt.
//
// DESIGN. The data is cut into blocks of block_size bytes; block k belongs to stripe
// k % threads, and each stripe runs on its own reactor of a Runtime. On a stripe,
// queue_depth worker coroutines take the stripe's blocks in order; for each block a worker
// awaits one request coroutine (read -> optional transform -> write) whose frame comes from
// the stripe's BioSet (its first parameter is BioSet&: frame and Bio are one allocation) and
// whose data sits in a BufferPool buffer (registered, so READ_FIXED/WRITE_FIXED). The number
// of requests in flight per stripe is therefore bounded by queue_depth, and the BioSet keeps
// queue_depth objects in reserve, so a stripe always makes progress when the allocator
// fails. Reads, transforms and writes of different requests overlap: while one request
// transforms on the reactor thread, the others' I/O is in the kernel.
// TAIL. All direct I/O is done in units of the files' alignment (>= 4096). The last block
// is read padded to that unit (a read stops at end of file) and its aligned part written with
// O_DIRECT; the remaining < unit bytes go through a buffered descriptor with pwrite, so the
// destination never grows past the source and a block device is not written past the data.
// HOLES. With skip_zero_blocks (a fresh destination pre-sized with ftruncate), all-zero
// blocks are not written: they read back as zeros and sparse sources stay sparse.
// DURABLE. A copy ends with one fsync of DST, issued on a reactor after every stripe is done
// (its time is part of the run's seconds).
// MEMORY. A stripe never runs more requests than it has blocks (queue_depth is lowered to
// that, which also sizes its BioSet reserve), and threads x queue_depth x (block_size +
// request frame) is kept within pipeline_memory_limit(): queue_depth is lowered to fit (the
// result says so), and a run whose threads x one request already passes it is refused.
// ERRORS. The first failure (with the file, offset and errno) stops new requests on every
// stripe; in-flight ones drain; the result carries the message. Nothing throws across
// reactor threads.
#pragma once

#include <bioring/runtime/counters.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace bioring {
class DirectFile;
}

namespace bioring::apps {

class Progress;

struct PipelineConfig {
    std::uint64_t size = 0; ///< bytes to move from offset 0
    std::uint32_t block_size = 1 << 20;
    unsigned queue_depth = 32;     ///< requests in flight per stripe
    unsigned threads = 1;          ///< stripes = reactors
    bool skip_zero_blocks = false; ///< leave holes for all-zero blocks (fresh DST only)
    int tail_fd = -1;              ///< buffered descriptor on the destination
    std::string dst_name;          ///< the name to use in messages (DST, not the temp)
    /// Applied in place to each block before it is written, on the stripe's reactor thread.
    /// \param shard the stripe; \param len bytes of data in @buf (the block, tail included).
    /// Returns: false to fail the run ("transform failed at offset ...").
    std::function<bool(unsigned shard, std::byte* buf, std::size_t len, std::uint64_t offset)>
        transform;
    Progress* progress = nullptr;
};

struct PipelineResult {
    bool ok = true;
    std::string error; ///< first failure, naming the file and the errno text
    double seconds = 0;
    std::uint64_t requests = 0; ///< request coroutines run
    std::uint64_t io_ops = 0;   ///< reads and writes issued
    std::uint64_t bytes = 0;    ///< payload bytes written (or compared, for verify)
    ReactorCounters counters;   ///< summed over reactors, for this run only
    std::string backend;
    unsigned threads = 1;             ///< reactors used (at most one per block)
    unsigned queue_depth = 1;         ///< requests in flight per stripe, after the MEMORY clamps
    bool queue_depth_lowered = false; ///< lowered below the stripe's blocks by the memory limit
    std::uint64_t memory_limit = 0;   ///< pipeline_memory_limit() used for the run
};

/// The most bytes a run may hold in request buffers and frames: a quarter of physical
/// memory, or half of RLIMIT_AS when that is lower. Context: any thread.
std::uint64_t pipeline_memory_limit() noexcept;
/// What pipeline_memory_limit() is derived from, for messages.
const char* memory_limit_source() noexcept;

/// Run the copy (or transform) pipeline from @src to @dst, then fsync @dst.
/// Context: main thread (creates and joins a Runtime of cfg.threads reactors).
/// Returns: the result; setup failures (no reactor, alignment above block_size) throw.
PipelineResult run_copy(DirectFile& src, DirectFile& dst, const PipelineConfig& cfg);

/// Read @src and @dst back with the same pipeline and compare them byte for byte.
/// Returns: ok, or the error naming the first differing offset.
PipelineResult run_verify(DirectFile& src, DirectFile& dst, const PipelineConfig& cfg);

} // namespace bioring::apps
