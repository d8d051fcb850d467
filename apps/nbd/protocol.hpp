// SPDX-License-Identifier: MIT
// The NBD wire format (fixed newstyle negotiation and transmission), as pure functions over
// byte buffers.
//
// This is the attack surface of bioring-nbd: everything a peer sends passes through a parse
// function here before the server acts on it. The functions are pure (no I/O, no global
// state), never allocate, and check every length against the buffer they were given and
// against the hard limits below, so they can be driven directly by unit tests and a fuzzer.
// Builders write into a caller's buffer and return the bytes written, or 0 when it does not
// fit. All integers on the wire are big-endian.
//
// Negotiator is the server side of the handshake as a state machine: it consumes one
// option at a time and produces the reply bytes, leaving the socket work (and the TLS
// session NBD_OPT_STARTTLS starts) to its caller.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace bioring::apps::nbd {

// ---- constants (names as in the NBD protocol document) ----------------------------------

inline constexpr std::uint64_t nbd_magic = 0x4e42444d41474943ull; ///< "NBDMAGIC"
inline constexpr std::uint64_t ihave_opt = 0x49484156454f5054ull; ///< "IHAVEOPT"
inline constexpr std::uint64_t opt_reply_magic = 0x0003e889045565a9ull;
inline constexpr std::uint32_t request_magic = 0x25609513u;
inline constexpr std::uint32_t simple_reply_magic = 0x67446698u;
inline constexpr std::uint32_t structured_reply_magic = 0x668e33efu;

// Handshake flags (server) and client flags.
inline constexpr std::uint16_t flag_fixed_newstyle = 1u << 0;
inline constexpr std::uint16_t flag_no_zeroes = 1u << 1;
inline constexpr std::uint32_t flag_c_fixed_newstyle = 1u << 0;
inline constexpr std::uint32_t flag_c_no_zeroes = 1u << 1;

// Transmission flags.
inline constexpr std::uint16_t tflag_has_flags = 1u << 0;
inline constexpr std::uint16_t tflag_read_only = 1u << 1;
inline constexpr std::uint16_t tflag_send_flush = 1u << 2;
inline constexpr std::uint16_t tflag_send_fua = 1u << 3;
inline constexpr std::uint16_t tflag_rotational = 1u << 4;
inline constexpr std::uint16_t tflag_send_trim = 1u << 5;
inline constexpr std::uint16_t tflag_send_write_zeroes = 1u << 6;
inline constexpr std::uint16_t tflag_send_df = 1u << 7;
inline constexpr std::uint16_t tflag_can_multi_conn = 1u << 8;
inline constexpr std::uint16_t tflag_send_resize = 1u << 9;
inline constexpr std::uint16_t tflag_send_cache = 1u << 10;
inline constexpr std::uint16_t tflag_send_fast_zero = 1u << 11;

// Options.
enum Option : std::uint32_t {
    opt_export_name = 1,
    opt_abort = 2,
    opt_list = 3,
    opt_starttls = 5,
    opt_info = 6,
    opt_go = 7,
    opt_structured_reply = 8,
    opt_list_meta_context = 9,
    opt_set_meta_context = 10,
};

// Option reply types.
inline constexpr std::uint32_t rep_ack = 1;
inline constexpr std::uint32_t rep_server = 2;
inline constexpr std::uint32_t rep_info = 3;
inline constexpr std::uint32_t rep_meta_context = 4;
inline constexpr std::uint32_t rep_err_unsup = (1u << 31) + 1;
inline constexpr std::uint32_t rep_err_policy = (1u << 31) + 2;
inline constexpr std::uint32_t rep_err_invalid = (1u << 31) + 3;
inline constexpr std::uint32_t rep_err_platform = (1u << 31) + 4;
inline constexpr std::uint32_t rep_err_tls_reqd = (1u << 31) + 5;
inline constexpr std::uint32_t rep_err_unknown = (1u << 31) + 6;
inline constexpr std::uint32_t rep_err_shutdown = (1u << 31) + 7;
inline constexpr std::uint32_t rep_err_block_size_reqd = (1u << 31) + 8;
inline constexpr std::uint32_t rep_err_too_big = (1u << 31) + 9;

// NBD_INFO types.
inline constexpr std::uint16_t info_export = 0;
inline constexpr std::uint16_t info_name = 1;
inline constexpr std::uint16_t info_description = 2;
inline constexpr std::uint16_t info_block_size = 3;

// Commands and command flags.
enum Command : std::uint16_t {
    cmd_read = 0,
    cmd_write = 1,
    cmd_disc = 2,
    cmd_flush = 3,
    cmd_trim = 4,
    cmd_cache = 5,
    cmd_write_zeroes = 6,
    cmd_block_status = 7,
};
inline constexpr std::uint16_t cmd_flag_fua = 1u << 0;
inline constexpr std::uint16_t cmd_flag_no_hole = 1u << 1;
inline constexpr std::uint16_t cmd_flag_df = 1u << 2;
inline constexpr std::uint16_t cmd_flag_req_one = 1u << 3;
inline constexpr std::uint16_t cmd_flag_fast_zero = 1u << 4;

// Structured reply chunks.
inline constexpr std::uint16_t reply_flag_done = 1u << 0;
inline constexpr std::uint16_t chunk_none = 0;
inline constexpr std::uint16_t chunk_offset_data = 1;
inline constexpr std::uint16_t chunk_offset_hole = 2;
inline constexpr std::uint16_t chunk_block_status = 5;
inline constexpr std::uint16_t chunk_error = (1u << 15) + 1;
inline constexpr std::uint16_t chunk_error_offset = (1u << 15) + 2;

// base:allocation status bits.
inline constexpr std::uint32_t state_hole = 1u << 0;
inline constexpr std::uint32_t state_zero = 1u << 1;

// Errors on the wire (not the host's errno values, though they coincide on Linux).
inline constexpr std::uint32_t err_perm = 1;
inline constexpr std::uint32_t err_io = 5;
inline constexpr std::uint32_t err_nomem = 12;
inline constexpr std::uint32_t err_inval = 22;
inline constexpr std::uint32_t err_nospc = 28;
inline constexpr std::uint32_t err_overflow = 75;
inline constexpr std::uint32_t err_notsup = 95;
inline constexpr std::uint32_t err_shutdown = 108;

/// The one meta context this server knows, and its id on the wire.
inline constexpr std::string_view base_allocation = "base:allocation";
inline constexpr std::uint32_t base_allocation_id = 1;

// ---- hard limits -------------------------------------------------------------------------

/// Longest export name or meta-context query accepted (the protocol's recommended 4096).
inline constexpr std::size_t max_string = 4096;
/// Longest option payload read into memory; a longer one is refused (the connection is
/// closed, since skipping gigabytes of a hostile peer's data buys nothing).
inline constexpr std::size_t max_option_length = 64 * 1024;
/// Most meta-context queries in one option.
inline constexpr std::size_t max_meta_queries = 128;
/// Most information requests in one NBD_OPT_INFO/GO.
inline constexpr std::size_t max_info_requests = 64;

inline constexpr std::size_t handshake_size = 18;     ///< NBDMAGIC, IHAVEOPT, flags
inline constexpr std::size_t option_header_size = 16; ///< IHAVEOPT, option, length
inline constexpr std::size_t option_reply_header_size = 20;
inline constexpr std::size_t request_size = 28;
inline constexpr std::size_t simple_reply_size = 16;
inline constexpr std::size_t chunk_header_size = 20;
inline constexpr std::size_t export_name_reply_zeroes = 124;

// ---- byte order helpers ------------------------------------------------------------------

inline void put16(std::byte* p, std::uint16_t v) noexcept {
    p[0] = std::byte(v >> 8);
    p[1] = std::byte(v);
}
inline void put32(std::byte* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) {
        p[i] = std::byte(v >> (24 - 8 * i));
    }
}
inline void put64(std::byte* p, std::uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) {
        p[i] = std::byte(v >> (56 - 8 * i));
    }
}
inline std::uint16_t get16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                      std::to_integer<unsigned>(p[1]));
}
inline std::uint32_t get32(const std::byte* p) noexcept {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
    }
    return v;
}
inline std::uint64_t get64(const std::byte* p) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
        v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
    }
    return v;
}

// ---- negotiation -------------------------------------------------------------------------

/// Write the server's opening (NBDMAGIC, IHAVEOPT, FIXED_NEWSTYLE|NO_ZEROES).
/// Returns: handshake_size, or 0 when @out is smaller.
std::size_t build_handshake(std::span<std::byte> out) noexcept;

/// Parse the client's 4-byte flags.
/// Returns: true and sets @flags when only known bits are set and FIXED_NEWSTYLE is one of
/// them (this server speaks nothing older); false otherwise (the server closes).
bool parse_client_flags(std::span<const std::byte> in, std::uint32_t& flags) noexcept;

struct OptionHeader {
    std::uint32_t option = 0;
    std::uint32_t length = 0; ///< payload bytes that follow
};
/// Parse a 16-byte option header. Returns: false for a short buffer or a bad magic.
bool parse_option_header(std::span<const std::byte> in, OptionHeader& h) noexcept;

/// Write an option reply header (magic, option, type, length) and @payload after it.
/// Returns: bytes written, or 0 when @out is too small.
std::size_t build_option_reply(std::span<std::byte> out, std::uint32_t option, std::uint32_t type,
                               std::span<const std::byte> payload) noexcept;

/// NBD_OPT_INFO / NBD_OPT_GO payload: name and the info types asked for.
struct InfoRequest {
    std::string_view name; ///< points into the parsed buffer
    bool want_name = false;
    bool want_description = false;
    bool want_block_size = false;
};
/// Returns: 0 and fills @r, or rep_err_invalid (lengths inconsistent with the buffer, name
/// over max_string, more than max_info_requests requests).
std::uint32_t parse_info_request(std::span<const std::byte> in, InfoRequest& r) noexcept;

/// NBD_OPT_LIST_/SET_META_CONTEXT payload: export name and the queries, validated.
struct MetaRequest {
    std::string_view name;
    std::uint32_t count = 0;
    std::span<const std::byte> queries; ///< count (length, string) pairs, all checked
};
/// Returns: 0 and fills @r, or rep_err_invalid (any length out of the buffer, a name or a
/// query over max_string, more than max_meta_queries queries, trailing bytes),
/// rep_err_too_big for too many queries.
std::uint32_t parse_meta_request(std::span<const std::byte> in, MetaRequest& r) noexcept;
/// Take the next query from @rest (as left by parse_meta_request, so already validated).
/// Returns: false when @rest is exhausted or malformed.
bool next_meta_query(std::span<const std::byte>& rest, std::string_view& query) noexcept;

/// The server's TLS policy (the protocol's modes): off is NOTLS (NBD_OPT_STARTTLS is
/// unsupported); on offers STARTTLS and still serves clients that do not take it; require
/// is FORCEDTLS (before TLS only STARTTLS and ABORT are served).
enum class TlsMode { off, on, require };

/// What the server exports, as the handshake advertises it.
struct ExportInfo {
    std::string_view name;        ///< the export's name ("" is also accepted as default)
    std::string_view description; ///< sent for NBD_INFO_DESCRIPTION when non-empty
    std::uint64_t size = 0;
    std::uint16_t flags = 0; ///< transmission flags (tflag_*), HAS_FLAGS included
    std::uint32_t min_block = 1;
    std::uint32_t preferred_block = 4096;
    std::uint32_t max_block = 1u << 20;
};

/// The server side of fixed newstyle negotiation: feed it each option (header + payload),
/// send what it wrote into out(), and act on the returned step.
class Negotiator {
public:
    enum class Step {
        reply, ///< send out(); read the next option
        go,    ///< send out(); transmission starts (after OPT_GO or OPT_EXPORT_NAME)
        close, ///< send out() (may be empty); then close the connection
        /// send out() (the ACK, in clear), then run the TLS handshake as the server; on
        /// success call tls_started() and read the next option over TLS, else close.
        starttls,
    };

    explicit Negotiator(const ExportInfo& e, TlsMode tls = TlsMode::off) noexcept
        : export_(e), tls_mode_(tls) {}

    /// Record the client flags (parse_client_flags has accepted them).
    void set_client_flags(std::uint32_t f) noexcept { client_flags_ = f; }

    /// Handle one option whose payload is @data (h.length bytes, already read). Options of
    /// a length over max_option_length must not be read: pass them to too_long().
    /// Context: pure; never allocates. Returns: the step; the reply is in out().
    Step handle(const OptionHeader& h, std::span<const std::byte> data) noexcept;
    /// Refuse an option whose payload is over max_option_length (it is not read).
    Step too_long(const OptionHeader& h) noexcept;
    /// The TLS handshake that followed Step::starttls succeeded. What was negotiated in
    /// clear before it (structured replies, the meta context) is forgotten: a man in the
    /// middle could have sent it. Context: pure.
    void tls_started() noexcept;
    /// Whether TLS is active (the options from here on arrive over it).
    bool tls_active() const noexcept { return tls_active_; }

    /// The bytes to send for the last step.
    std::span<const std::byte> out() const noexcept { return {buf_.data(), len_}; }
    /// Whether the client negotiated structured replies.
    bool structured() const noexcept { return structured_; }
    /// Whether base:allocation was selected (NBD_CMD_BLOCK_STATUS is allowed).
    bool base_allocation_selected() const noexcept { return meta_selected_; }

private:
    bool name_matches(std::string_view n) const noexcept;
    bool reply(std::uint32_t option, std::uint32_t type, std::span<const std::byte> p) noexcept;
    Step info_or_go(const OptionHeader& h, std::span<const std::byte> data) noexcept;
    Step meta_context(const OptionHeader& h, std::span<const std::byte> data) noexcept;

    const ExportInfo& export_;
    TlsMode tls_mode_;
    bool tls_active_ = false;
    std::uint32_t client_flags_ = 0;
    bool structured_ = false;
    bool meta_selected_ = false;
    // Longest reply: OPT_LIST's server entry (4 + max_string) or an INFO_NAME, + header,
    // plus the INFO replies and ACK of a GO: bounded well inside 3 * max_string.
    std::array<std::byte, 3 * max_string> buf_{};
    std::size_t len_ = 0;
};

// ---- transmission ------------------------------------------------------------------------

struct Request {
    std::uint16_t flags = 0;
    std::uint16_t type = 0;
    std::uint64_t cookie = 0;
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
};
/// Parse a 28-byte request header. Returns: false for a short buffer or a bad magic (the
/// server must close: it cannot find the next request).
bool parse_request(std::span<const std::byte> in, Request& r) noexcept;
/// Write a request header (for tests and clients). Returns: request_size or 0.
std::size_t build_request(std::span<std::byte> out, const Request& r) noexcept;

/// Check a request against the export and the negotiated state.
/// Returns: 0 when it may be served, else the NBD error to reply with: EINVAL (unknown
/// command or flags, zero length where forbidden, beyond the end, BLOCK_STATUS without
/// base:allocation, a command not advertised), EPERM (WRITE, TRIM or WRITE_ZEROES on a
/// read-only export, advertised or not),
/// EOVERFLOW (a READ/WRITE over max_block), ENOTSUP (FAST_ZERO the export cannot honour
/// is not decided here). The payload of a refused WRITE must still be consumed.
std::uint32_t check_request(const Request& r, const ExportInfo& e, bool structured,
                            bool base_allocation) noexcept;

/// A simple reply header: magic, error, cookie. Returns: simple_reply_size or 0.
std::size_t build_simple_reply(std::span<std::byte> out, std::uint64_t cookie,
                               std::uint32_t error) noexcept;
/// A structured reply chunk header. Returns: chunk_header_size or 0.
std::size_t build_chunk_header(std::span<std::byte> out, std::uint16_t flags, std::uint16_t type,
                               std::uint64_t cookie, std::uint32_t length) noexcept;
/// OFFSET_DATA header + offset; the caller sends @data_len bytes after it.
/// Returns: chunk_header_size + 8 or 0.
std::size_t build_offset_data(std::span<std::byte> out, std::uint16_t flags, std::uint64_t cookie,
                              std::uint64_t offset, std::uint32_t data_len) noexcept;
/// A complete OFFSET_HOLE chunk. Returns: chunk_header_size + 12 or 0.
std::size_t build_offset_hole(std::span<std::byte> out, std::uint16_t flags, std::uint64_t cookie,
                              std::uint64_t offset, std::uint32_t hole_len) noexcept;
/// A complete NONE chunk with DONE set. Returns: chunk_header_size or 0.
std::size_t build_done(std::span<std::byte> out, std::uint64_t cookie) noexcept;

struct Extent {
    std::uint32_t length = 0;
    std::uint32_t flags = 0; ///< state_hole | state_zero
};
/// A complete BLOCK_STATUS chunk (DONE set) for context @id with @extents.
/// Returns: bytes written or 0 (no extents, a zero-length extent, or too small).
std::size_t build_block_status(std::span<std::byte> out, std::uint64_t cookie, std::uint32_t id,
                               std::span<const Extent> extents) noexcept;
/// A complete ERROR chunk (DONE set) with @error and a message (truncated to 4096 bytes).
/// Returns: bytes written or 0.
std::size_t build_error_chunk(std::span<std::byte> out, std::uint64_t cookie, std::uint32_t error,
                              std::string_view message) noexcept;

/// The NBD error for a negative errno from the layers below: EPERM/EROFS -> EPERM,
/// EINVAL, ENOSPC/EDQUOT/EFBIG -> ENOSPC, ENOMEM, EOVERFLOW, EOPNOTSUPP -> ENOTSUP,
/// ESHUTDOWN, and EIO for everything else.
std::uint32_t error_from_errno(int neg_errno) noexcept;

/// A name for a command (for messages), "unknown" otherwise.
const char* command_name(std::uint16_t type) noexcept;

} // namespace bioring::apps::nbd
