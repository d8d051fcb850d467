// SPDX-License-Identifier: MIT
// The bioring-wal log format: what `bench` writes and `verify` checks.
//
// A log is a sequence of 4 KiB blocks; block i lies at offset i * 4096 and says so in its
// header (block_seq == i), so a block written to the wrong place or left over from an older
// log is caught. A block holds whole records (records never span blocks, so a record is
// at most max_payload bytes of payload); the unused rest of a block is zero. Every block
// carries a CRC32C over its 4096 bytes (crc field taken as 0), every record a CRC32C over
// its header (crc field taken as 0) and payload. Record sequence numbers start at 1 and
// are contiguous through the log, in block order. All integers are little-endian.
//
//   block header (32 bytes)          record header (24 bytes), then `length` payload bytes
//   u32 magic  "BWLB"                u32 magic  "BWLR"
//   u32 crc32c                       u32 length
//   u64 block_seq                    u64 seq
//   u64 batch_start                  u32 crc32c
//   u32 batch_blocks                 u32 reserved (0)
//   u16 record_count
//   u16 used (bytes incl. header)
//
// A write ("batch") carries blocks [batch_start, batch_start + batch_blocks); the writer
// issues the next write only after the previous one (and its sync) completed, so after a
// crash only the LAST write can be partly on disk — in any subset of its blocks.
//
// TAIL. Let T be the first block that is not valid (bad magic, block_seq, CRC, record
// contents, sequence continuity, or a short block at end of file). The log is TORN AT T
// (expected after a crash, not an error) when every later block that is valid on its own
// (magic, block_seq and CRC right) has batch_start <= T, i.e. belongs to the write that
// was in flight. Otherwise block T was damaged after it had been written: DAMAGE, reported
// at the offset of the first record in T that fails its own check (or T's offset when its
// records are intact and the header or padding is not). Corruption inside the last write
// cannot be told from a torn write and is reported as a torn tail. When every block from T
// to the end is all zeros (space preallocated with --prealloc and not yet used), the log is
// CLEAN, not torn.
//
// The payload of record seq is a pure function of seq (fill_payload), so verify checks the
// bytes themselves too.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bioring::apps::wal {

inline constexpr std::size_t block_size = 4096;
inline constexpr std::size_t block_header_size = 32;
inline constexpr std::size_t record_header_size = 24;
inline constexpr std::uint32_t block_magic = 0x424c5742;  // "BWLB"
inline constexpr std::uint32_t record_magic = 0x524c5742; // "BWLR"
/// The largest record payload: one record fills a block.
inline constexpr std::size_t max_payload = block_size - block_header_size - record_header_size;

/// Fill @len bytes at @out with the payload of record @seq. Context: any thread; pure.
void fill_payload(std::uint64_t seq, void* out, std::size_t len) noexcept;

/// Write the record @seq with a @len-byte payload (len <= max_payload) at @out (header then
/// payload, record_header_size + len bytes). Context: any thread; pure.
void encode_record(std::uint64_t seq, std::uint32_t len, void* out) noexcept;

/// Fills blocks of a batch buffer with records. Context: one thread; allocates nothing.
class BlockPacker {
public:
    /// @buf: batch_blocks * block_size bytes, zeroed by the packer as it goes.
    BlockPacker(unsigned char* buf, std::size_t max_blocks) noexcept
        : buf_(buf), max_blocks_(max_blocks) {}
    /// Start a batch whose first block is @first_block.
    void begin(std::uint64_t first_block) noexcept;
    /// Append the encoded record @rec (@len bytes). Returns: false when it does not fit in
    /// the batch buffer (the batch is full; nothing was appended).
    bool add(const void* rec, std::size_t len) noexcept;
    /// Seal the blocks (batch fields, counts, CRCs). Returns: the number of blocks.
    std::size_t finish() noexcept;
    std::size_t records() const noexcept { return records_; }

private:
    void open_block() noexcept;
    unsigned char* buf_;
    std::size_t max_blocks_;
    std::uint64_t first_ = 0;
    std::size_t blocks_ = 0;   // blocks opened
    std::size_t used_ = 0;     // bytes used in the open block
    std::size_t in_block_ = 0; // records in the open block
    std::size_t records_ = 0;
};

/// What check_block() found in one block.
struct BlockInfo {
    bool valid_alone = false; ///< magic, block_seq and CRC right
    bool valid = false;       ///< and every record right (seq continuity across blocks aside)
    bool zero = false;        ///< all 4096 bytes are zero (never written, or preallocated)
    std::uint64_t batch_start = 0;
    std::uint64_t first_seq = 0, last_seq = 0; ///< of its records (valid only)
    std::uint32_t records = 0;
    std::uint32_t damage = 0; ///< offset within the block of the first bad record, or 0
    const char* reason = "";  ///< why not valid
};

/// Check the @len bytes at @blk (len < block_size: a short block at end of file) as block
/// number @index. Context: any thread; pure.
BlockInfo check_block(const unsigned char* blk, std::size_t len, std::uint64_t index) noexcept;

} // namespace bioring::apps::wal
