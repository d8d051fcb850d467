// SPDX-License-Identifier: MIT
// The NBD wire format: parsers, builders and the negotiation state machine (protocol.hpp).
#include "apps/nbd/protocol.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace bioring::apps::nbd {

namespace {

std::string_view as_string(std::span<const std::byte> s) noexcept {
    return {reinterpret_cast<const char*>(s.data()), s.size()};
}

/// Take a u32 length and that many bytes from @in (bounded by @max); advances @in.
bool take_string(std::span<const std::byte>& in, std::size_t max, std::string_view& s) noexcept {
    if (in.size() < 4) {
        return false;
    }
    const std::uint32_t n = get32(in.data());
    if (n > max || n > in.size() - 4) {
        return false;
    }
    s = as_string(in.subspan(4, n));
    in = in.subspan(4 + n);
    return true;
}

} // namespace

std::size_t build_handshake(std::span<std::byte> out) noexcept {
    if (out.size() < handshake_size) {
        return 0;
    }
    put64(out.data(), nbd_magic);
    put64(out.data() + 8, ihave_opt);
    put16(out.data() + 16, flag_fixed_newstyle | flag_no_zeroes);
    return handshake_size;
}

bool parse_client_flags(std::span<const std::byte> in, std::uint32_t& flags) noexcept {
    if (in.size() < 4) {
        return false;
    }
    const std::uint32_t f = get32(in.data());
    if ((f & ~(flag_c_fixed_newstyle | flag_c_no_zeroes)) != 0 ||
        (f & flag_c_fixed_newstyle) == 0) {
        return false;
    }
    flags = f;
    return true;
}

bool parse_option_header(std::span<const std::byte> in, OptionHeader& h) noexcept {
    if (in.size() < option_header_size || get64(in.data()) != ihave_opt) {
        return false;
    }
    h.option = get32(in.data() + 8);
    h.length = get32(in.data() + 12);
    return true;
}

std::size_t build_option_reply(std::span<std::byte> out, std::uint32_t option, std::uint32_t type,
                               std::span<const std::byte> payload) noexcept {
    if (payload.size() > UINT32_MAX || out.size() < option_reply_header_size ||
        out.size() - option_reply_header_size < payload.size()) {
        return 0;
    }
    put64(out.data(), opt_reply_magic);
    put32(out.data() + 8, option);
    put32(out.data() + 12, type);
    put32(out.data() + 16, static_cast<std::uint32_t>(payload.size()));
    if (!payload.empty()) {
        std::memcpy(out.data() + option_reply_header_size, payload.data(), payload.size());
    }
    return option_reply_header_size + payload.size();
}

std::uint32_t parse_info_request(std::span<const std::byte> in, InfoRequest& r) noexcept {
    r = InfoRequest{};
    if (!take_string(in, max_string, r.name) || in.size() < 2) {
        return rep_err_invalid;
    }
    const std::uint16_t n = get16(in.data());
    in = in.subspan(2);
    if (n > max_info_requests || in.size() != std::size_t{n} * 2) {
        return rep_err_invalid;
    }
    for (std::uint16_t i = 0; i < n; ++i) {
        switch (get16(in.data() + 2 * i)) {
        case info_name:
            r.want_name = true;
            break;
        case info_description:
            r.want_description = true;
            break;
        case info_block_size:
            r.want_block_size = true;
            break;
        default:
            break; // INFO_EXPORT is always sent; unknown types are ignored
        }
    }
    return 0;
}

std::uint32_t parse_meta_request(std::span<const std::byte> in, MetaRequest& r) noexcept {
    r = MetaRequest{};
    if (!take_string(in, max_string, r.name) || in.size() < 4) {
        return rep_err_invalid;
    }
    const std::uint32_t n = get32(in.data());
    in = in.subspan(4);
    if (n > max_meta_queries) {
        return rep_err_too_big;
    }
    std::span<const std::byte> rest = in;
    for (std::uint32_t i = 0; i < n; ++i) {
        std::string_view q;
        if (!take_string(rest, max_string, q)) {
            return rep_err_invalid;
        }
    }
    if (!rest.empty()) {
        return rep_err_invalid;
    }
    r.count = n;
    r.queries = in;
    return 0;
}

bool next_meta_query(std::span<const std::byte>& rest, std::string_view& query) noexcept {
    return take_string(rest, max_string, query);
}

// ---- Negotiator --------------------------------------------------------------------------

bool Negotiator::name_matches(std::string_view n) const noexcept {
    return n.empty() || n == export_.name;
}

bool Negotiator::reply(std::uint32_t option, std::uint32_t type,
                       std::span<const std::byte> p) noexcept {
    const std::size_t n =
        build_option_reply(std::span<std::byte>(buf_).subspan(len_), option, type, p);
    len_ += n;
    return n != 0;
}

Negotiator::Step Negotiator::too_long(const OptionHeader& h) noexcept {
    len_ = 0;
    if (h.option == opt_export_name) {
        return Step::close; // no error reply exists for EXPORT_NAME
    }
    reply(h.option, rep_err_too_big, {});
    return Step::close;
}

void Negotiator::tls_started() noexcept {
    tls_active_ = true;
    structured_ = false;
    meta_selected_ = false;
}

Negotiator::Step Negotiator::handle(const OptionHeader& h,
                                    std::span<const std::byte> data) noexcept {
    len_ = 0;
    if (data.size() != h.length || h.length > max_option_length) {
        return too_long(h);
    }
    if (h.option == opt_starttls && tls_mode_ != TlsMode::off) {
        if (!data.empty() || tls_active_) { // no payload; no TLS inside TLS
            reply(h.option, rep_err_invalid, {});
            return Step::reply;
        }
        reply(h.option, rep_ack, {});
        return Step::starttls;
    }
    if (tls_mode_ == TlsMode::require && !tls_active_ && h.option != opt_abort) {
        if (h.option == opt_export_name) {
            return Step::close; // it cannot be refused with an error: FORCEDTLS closes
        }
        reply(h.option, rep_err_tls_reqd, {});
        return Step::reply;
    }
    switch (h.option) {
    case opt_export_name: {
        const std::string_view name = as_string(data);
        if (name.size() > max_string || !name_matches(name)) {
            return Step::close; // the protocol's only answer to an unknown name here
        }
        std::size_t n = 10;
        put64(buf_.data(), export_.size);
        put16(buf_.data() + 8, export_.flags);
        if ((client_flags_ & flag_c_no_zeroes) == 0) {
            std::memset(buf_.data() + n, 0, export_name_reply_zeroes);
            n += export_name_reply_zeroes;
        }
        len_ = n;
        return Step::go;
    }
    case opt_abort:
        reply(h.option, rep_ack, {});
        return Step::close;
    case opt_list: {
        if (!data.empty()) {
            reply(h.option, rep_err_invalid, {});
            return Step::reply;
        }
        std::array<std::byte, 4 + max_string> entry;
        const std::size_t n = std::min(export_.name.size(), max_string);
        put32(entry.data(), static_cast<std::uint32_t>(n));
        // copy_n, not memcpy: an empty name may have a null data() (memcpy requires non-null).
        std::copy_n(reinterpret_cast<const std::byte*>(export_.name.data()), n, entry.data() + 4);
        reply(h.option, rep_server, std::span<const std::byte>(entry.data(), 4 + n));
        reply(h.option, rep_ack, {});
        return Step::reply;
    }
    case opt_structured_reply:
        if (!data.empty()) {
            reply(h.option, rep_err_invalid, {});
            return Step::reply;
        }
        structured_ = true;
        reply(h.option, rep_ack, {});
        return Step::reply;
    case opt_info:
    case opt_go:
        return info_or_go(h, data);
    case opt_list_meta_context:
    case opt_set_meta_context:
        return meta_context(h, data);
    default:
        reply(h.option, rep_err_unsup, {});
        return Step::reply;
    }
}

Negotiator::Step Negotiator::info_or_go(const OptionHeader& h,
                                        std::span<const std::byte> data) noexcept {
    InfoRequest r;
    if (std::uint32_t err = parse_info_request(data, r); err != 0) {
        reply(h.option, err, {});
        return Step::reply;
    }
    if (!name_matches(r.name)) {
        reply(h.option, rep_err_unknown, {});
        return Step::reply;
    }
    std::array<std::byte, 2 + max_string> p;
    put16(p.data(), info_export);
    put64(p.data() + 2, export_.size);
    put16(p.data() + 10, export_.flags);
    reply(h.option, rep_info, std::span<const std::byte>(p.data(), 12));
    if (r.want_name) {
        const std::size_t n = std::min(export_.name.size(), max_string);
        put16(p.data(), info_name);
        std::copy_n(reinterpret_cast<const std::byte*>(export_.name.data()), n, p.data() + 2);
        reply(h.option, rep_info, std::span<const std::byte>(p.data(), 2 + n));
    }
    if (r.want_description && !export_.description.empty()) {
        const std::size_t n = std::min(export_.description.size(), max_string);
        put16(p.data(), info_description);
        std::copy_n(reinterpret_cast<const std::byte*>(export_.description.data()), n,
                    p.data() + 2);
        reply(h.option, rep_info, std::span<const std::byte>(p.data(), 2 + n));
    }
    if (r.want_block_size) {
        put16(p.data(), info_block_size);
        put32(p.data() + 2, export_.min_block);
        put32(p.data() + 6, export_.preferred_block);
        put32(p.data() + 10, export_.max_block);
        reply(h.option, rep_info, std::span<const std::byte>(p.data(), 14));
    }
    reply(h.option, rep_ack, {});
    return h.option == opt_go ? Step::go : Step::reply;
}

Negotiator::Step Negotiator::meta_context(const OptionHeader& h,
                                          std::span<const std::byte> data) noexcept {
    const bool set = h.option == opt_set_meta_context;
    MetaRequest r;
    if (std::uint32_t err = parse_meta_request(data, r); err != 0) {
        reply(h.option, err, {});
        return Step::reply;
    }
    if (set && !structured_) {
        reply(h.option, rep_err_invalid, {});
        return Step::reply;
    }
    if (!name_matches(r.name)) {
        reply(h.option, rep_err_unknown, {});
        return Step::reply;
    }
    bool match = false;
    if (r.count == 0) {
        match = !set; // LIST with no query lists everything; SET with none selects nothing
    }
    std::span<const std::byte> rest = r.queries;
    std::string_view q;
    while (next_meta_query(rest, q)) {
        if (q == base_allocation || (!set && q == "base:")) {
            match = true;
        }
    }
    if (set) {
        meta_selected_ = match;
    }
    if (match) {
        std::array<std::byte, 4 + base_allocation.size()> p;
        put32(p.data(), set ? base_allocation_id : 0);
        std::memcpy(p.data() + 4, base_allocation.data(), base_allocation.size());
        reply(h.option, rep_meta_context, p);
    }
    reply(h.option, rep_ack, {});
    return Step::reply;
}

// ---- transmission ------------------------------------------------------------------------

bool parse_request(std::span<const std::byte> in, Request& r) noexcept {
    if (in.size() < request_size || get32(in.data()) != request_magic) {
        return false;
    }
    r.flags = get16(in.data() + 4);
    r.type = get16(in.data() + 6);
    r.cookie = get64(in.data() + 8);
    r.offset = get64(in.data() + 16);
    r.length = get32(in.data() + 24);
    return true;
}

std::size_t build_request(std::span<std::byte> out, const Request& r) noexcept {
    if (out.size() < request_size) {
        return 0;
    }
    put32(out.data(), request_magic);
    put16(out.data() + 4, r.flags);
    put16(out.data() + 6, r.type);
    put64(out.data() + 8, r.cookie);
    put64(out.data() + 16, r.offset);
    put32(out.data() + 24, r.length);
    return request_size;
}

std::uint32_t check_request(const Request& r, const ExportInfo& e, bool structured,
                            bool base_allocation) noexcept {
    std::uint16_t allowed = cmd_flag_fua; // FUA is harmless on any command
    bool writes = false;
    if ((e.flags & tflag_read_only) != 0 &&
        (r.type == cmd_write || r.type == cmd_trim || r.type == cmd_write_zeroes)) {
        return err_perm; // even where the command is not advertised
    }
    bool payload = false;
    switch (r.type) {
    case cmd_read:
        payload = true;
        break;
    case cmd_write:
        writes = payload = true;
        break;
    case cmd_disc:
        return 0;
    case cmd_flush:
        if ((e.flags & tflag_send_flush) == 0) {
            return err_inval;
        }
        return (r.flags & ~allowed) != 0 ? err_inval : 0; // offset/length are ignored
    case cmd_trim:
        if ((e.flags & tflag_send_trim) == 0) {
            return err_inval;
        }
        writes = true;
        break;
    case cmd_cache:
        if ((e.flags & tflag_send_cache) == 0) {
            return err_inval;
        }
        break;
    case cmd_write_zeroes:
        if ((e.flags & tflag_send_write_zeroes) == 0) {
            return err_inval;
        }
        allowed |= cmd_flag_no_hole;
        if ((e.flags & tflag_send_fast_zero) != 0) {
            allowed |= cmd_flag_fast_zero;
        }
        writes = true;
        break;
    case cmd_block_status:
        if (!structured || !base_allocation) {
            return err_inval;
        }
        allowed |= cmd_flag_req_one;
        break;
    default:
        return err_inval;
    }
    if ((r.flags & ~allowed) != 0 || r.length == 0) {
        return err_inval;
    }
    if (payload && r.length > e.max_block) {
        return err_overflow;
    }
    if (r.offset > e.size || r.length > e.size - r.offset) {
        return writes ? err_nospc : err_inval;
    }
    return 0;
}

std::size_t build_simple_reply(std::span<std::byte> out, std::uint64_t cookie,
                               std::uint32_t error) noexcept {
    if (out.size() < simple_reply_size) {
        return 0;
    }
    put32(out.data(), simple_reply_magic);
    put32(out.data() + 4, error);
    put64(out.data() + 8, cookie);
    return simple_reply_size;
}

std::size_t build_chunk_header(std::span<std::byte> out, std::uint16_t flags, std::uint16_t type,
                               std::uint64_t cookie, std::uint32_t length) noexcept {
    if (out.size() < chunk_header_size) {
        return 0;
    }
    put32(out.data(), structured_reply_magic);
    put16(out.data() + 4, flags);
    put16(out.data() + 6, type);
    put64(out.data() + 8, cookie);
    put32(out.data() + 16, length);
    return chunk_header_size;
}

std::size_t build_offset_data(std::span<std::byte> out, std::uint16_t flags, std::uint64_t cookie,
                              std::uint64_t offset, std::uint32_t data_len) noexcept {
    if (out.size() < chunk_header_size + 8 || data_len > UINT32_MAX - 8) {
        return 0;
    }
    build_chunk_header(out, flags, chunk_offset_data, cookie, 8 + data_len);
    put64(out.data() + chunk_header_size, offset);
    return chunk_header_size + 8;
}

std::size_t build_offset_hole(std::span<std::byte> out, std::uint16_t flags, std::uint64_t cookie,
                              std::uint64_t offset, std::uint32_t hole_len) noexcept {
    if (out.size() < chunk_header_size + 12) {
        return 0;
    }
    build_chunk_header(out, flags, chunk_offset_hole, cookie, 12);
    put64(out.data() + chunk_header_size, offset);
    put32(out.data() + chunk_header_size + 8, hole_len);
    return chunk_header_size + 12;
}

std::size_t build_done(std::span<std::byte> out, std::uint64_t cookie) noexcept {
    return build_chunk_header(out, reply_flag_done, chunk_none, cookie, 0);
}

std::size_t build_block_status(std::span<std::byte> out, std::uint64_t cookie, std::uint32_t id,
                               std::span<const Extent> extents) noexcept {
    if (extents.empty() || extents.size() > (UINT32_MAX - 4) / 8) {
        return 0;
    }
    const std::size_t len = 4 + 8 * extents.size();
    if (out.size() < chunk_header_size || out.size() - chunk_header_size < len) {
        return 0;
    }
    build_chunk_header(out, reply_flag_done, chunk_block_status, cookie,
                       static_cast<std::uint32_t>(len));
    std::byte* p = out.data() + chunk_header_size;
    put32(p, id);
    p += 4;
    for (const Extent& x : extents) {
        if (x.length == 0) {
            return 0;
        }
        put32(p, x.length);
        put32(p + 4, x.flags);
        p += 8;
    }
    return chunk_header_size + len;
}

std::size_t build_error_chunk(std::span<std::byte> out, std::uint64_t cookie, std::uint32_t error,
                              std::string_view message) noexcept {
    message = message.substr(0, std::min<std::size_t>(message.size(), max_string));
    const std::size_t len = 6 + message.size();
    if (out.size() < chunk_header_size || out.size() - chunk_header_size < len) {
        return 0;
    }
    build_chunk_header(out, reply_flag_done, chunk_error, cookie, static_cast<std::uint32_t>(len));
    std::byte* p = out.data() + chunk_header_size;
    put32(p, error);
    put16(p + 4, static_cast<std::uint16_t>(message.size()));
    if (!message.empty()) {
        std::memcpy(p + 6, message.data(), message.size());
    }
    return chunk_header_size + len;
}

std::uint32_t error_from_errno(int neg_errno) noexcept {
    switch (-neg_errno) {
    case EPERM:
    case EROFS:
    case EACCES:
        return err_perm;
    case EINVAL:
        return err_inval;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return err_nospc;
    case ENOMEM:
        return err_nomem;
    case EOVERFLOW:
        return err_overflow;
    case EOPNOTSUPP:
        return err_notsup;
    case ESHUTDOWN:
        return err_shutdown;
    default:
        return err_io;
    }
}

const char* command_name(std::uint16_t type) noexcept {
    switch (type) {
    case cmd_read:
        return "READ";
    case cmd_write:
        return "WRITE";
    case cmd_disc:
        return "DISC";
    case cmd_flush:
        return "FLUSH";
    case cmd_trim:
        return "TRIM";
    case cmd_cache:
        return "CACHE";
    case cmd_write_zeroes:
        return "WRITE_ZEROES";
    case cmd_block_status:
        return "BLOCK_STATUS";
    default:
        return "unknown";
    }
}

} // namespace bioring::apps::nbd
