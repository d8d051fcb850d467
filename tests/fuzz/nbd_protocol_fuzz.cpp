// SPDX-License-Identifier: MIT
// libFuzzer target for bioring-nbd's wire format (apps/nbd/protocol.cpp): the handshake's
// client flags, option headers and payloads through the Negotiator, the option payload
// parsers on their own, and transmission-phase request headers through parse_request and
// check_request, all on arbitrary bytes as a hostile client would send them.
// What it checks beyond "no crash, no sanitizer report":
//  - every reply the Negotiator writes is a sequence of well-formed option replies (magic,
//    the option asked, lengths that add up to exactly what it wrote), or the EXPORT_NAME
//    reply of its fixed size;
//  - with TLS on or required (the same option stream replayed, with every STARTTLS the
//    Negotiator accepts taken as a completed TLS handshake): before TLS a FORCEDTLS
//    Negotiator answers every option but STARTTLS and ABORT with exactly one TLS_REQD
//    reply and never enters transmission; STARTTLS is accepted at most once; after it the
//    structured replies and meta context negotiated in clear are gone;
//  - a parsed request builds back to the same 28 bytes;
//  - a request check_request accepts is a known command with known flags, inside the
//    export, of a length within max_block when it carries a payload, and never a write to a
//    read-only export.
// Input layout: byte 0 picks the export (size, flags, name), the rest is the stream the
// server would read: 4 bytes of client flags, then options (16-byte header, payload taken
// from the stream up to its length), then, once an option says "go", 28-byte requests.
#include "apps/nbd/protocol.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

using namespace bioring::apps::nbd;

namespace {

[[noreturn]] void broken(const char* what) {
    (void)what;
    __builtin_trap(); // libFuzzer reports the input that got here
}

/// The replies of one option: whole option replies back to back, each for @option.
void check_option_replies(std::span<const std::byte> out, std::uint32_t option) {
    while (!out.empty()) {
        if (out.size() < option_reply_header_size || get64(out.data()) != opt_reply_magic ||
            get32(out.data() + 8) != option) {
            broken("malformed option reply");
        }
        const std::uint32_t len = get32(out.data() + 16);
        if (len > out.size() - option_reply_header_size) {
            broken("option reply longer than what was written");
        }
        out = out.subspan(option_reply_header_size + len);
    }
}

void check_request_verdict(const Request& r, const ExportInfo& e, bool structured,
                           bool base_alloc) {
    const std::uint32_t err = check_request(r, e, structured, base_alloc);
    if (err != 0) {
        if (err != err_inval && err != err_perm && err != err_overflow && err != err_nospc) {
            broken("check_request returned an error it does not document");
        }
        return;
    }
    const bool ro = (e.flags & tflag_read_only) != 0;
    const bool write_class =
        r.type == cmd_write || r.type == cmd_trim || r.type == cmd_write_zeroes;
    if (ro && write_class) {
        broken("write-class command accepted on a read-only export");
    }
    if (r.type > cmd_block_status) {
        broken("unknown command accepted");
    }
    if (r.type == cmd_disc || r.type == cmd_flush) {
        return; // offset and length are ignored
    }
    if (r.length == 0 || r.offset > e.size || r.length > e.size - r.offset) {
        broken("request outside the export accepted");
    }
    if ((r.type == cmd_read || r.type == cmd_write) && r.length > e.max_block) {
        broken("payload over max_block accepted");
    }
    if (r.type == cmd_block_status && (!structured || !base_alloc)) {
        broken("BLOCK_STATUS accepted without base:allocation");
    }
    const std::uint16_t known =
        cmd_flag_fua | cmd_flag_no_hole | cmd_flag_df | cmd_flag_req_one | cmd_flag_fast_zero;
    if ((r.flags & ~known) != 0) {
        broken("unknown command flag accepted");
    }
}

void check_payload_parsers(std::span<const std::byte> p) {
    InfoRequest ir;
    if (parse_info_request(p, ir) == 0) {
        if (ir.name.size() > max_string ||
            (ir.name.size() != 0 &&
             (reinterpret_cast<const std::byte*>(ir.name.data()) < p.data() ||
              reinterpret_cast<const std::byte*>(ir.name.data()) + ir.name.size() >
                  p.data() + p.size()))) {
            broken("info request name outside its buffer");
        }
    }
    MetaRequest mr;
    if (parse_meta_request(p, mr) == 0) {
        if (mr.name.size() > max_string || mr.count > max_meta_queries) {
            broken("meta request over its limits");
        }
        std::span<const std::byte> rest = mr.queries;
        std::string_view q;
        std::uint32_t n = 0;
        while (next_meta_query(rest, q)) {
            if (q.size() > max_string) {
                broken("meta query over max_string");
            }
            ++n;
        }
        if (n != mr.count || !rest.empty()) {
            broken("meta queries differ from the validated count");
        }
    }
}

/// Replay the option stream @in (after the client flags) with TLS @mode.
void check_tls_negotiation(const ExportInfo& e, std::span<const std::byte> in, TlsMode mode) {
    Negotiator n(e, mode);
    std::uint32_t flags = 0;
    if (!parse_client_flags(in, flags)) {
        return;
    }
    in = in.subspan(4);
    n.set_client_flags(flags);
    for (;;) {
        OptionHeader h;
        if (!parse_option_header(in, h)) {
            return;
        }
        in = in.subspan(option_header_size);
        const bool before_tls = !n.tls_active();
        bool whole = false; // the payload was all there (a cut one is refused as too long)
        Negotiator::Step step;
        if (h.length > max_option_length) {
            step = n.too_long(h);
        } else {
            const std::size_t take = std::min<std::size_t>(h.length, in.size());
            whole = take == h.length;
            step = n.handle(h, in.first(take));
            in = in.subspan(take);
        }
        const std::span<const std::byte> out = n.out();
        if (step == Negotiator::Step::starttls) {
            if (mode == TlsMode::off || !before_tls || h.option != opt_starttls ||
                out.size() != option_reply_header_size || get32(out.data() + 12) != rep_ack) {
                broken("STARTTLS accepted where it must not be, or not with one ACK");
            }
            n.tls_started();
            if (n.structured() || n.base_allocation_selected()) {
                broken("state negotiated in clear survived STARTTLS");
            }
            continue;
        }
        if (mode == TlsMode::require && before_tls && h.option != opt_starttls &&
            h.option != opt_abort && whole) {
            if (step == Negotiator::Step::go) {
                broken("transmission entered before TLS with --tls require");
            }
            if (h.option != opt_export_name && (out.size() != option_reply_header_size ||
                                                get32(out.data() + 12) != rep_err_tls_reqd)) {
                broken("an option before TLS got something else than TLS_REQD");
            }
        }
        if (step != Negotiator::Step::reply) {
            return;
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::uint8_t cfg = data[0];
    std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data) + 1, size - 1);

    static const std::string long_name(max_string, 'n');
    ExportInfo e;
    // Names as the server makes them: views of std::strings, never a null data().
    e.name = (cfg & 0x03) == 0   ? ""
             : (cfg & 0x03) == 1 ? "disk"
             : (cfg & 0x03) == 2 ? std::string_view(long_name)
                                 : "base:";
    e.description = (cfg & 0x04) != 0 ? std::string_view(long_name) : "";
    e.size = (cfg & 0x08) != 0 ? (std::uint64_t{1} << 30) : UINT64_MAX - 4095;
    e.flags = tflag_has_flags | tflag_send_flush | tflag_send_fua;
    if ((cfg & 0x10) != 0) {
        e.flags |= tflag_read_only;
    }
    if ((cfg & 0x20) != 0) {
        e.flags |=
            tflag_send_trim | tflag_send_write_zeroes | tflag_send_fast_zero | tflag_send_cache;
    }
    const bool bare_requests = (cfg & 0x40) != 0; // skip the handshake: fuzz requests only

    if (!bare_requests) {
        check_tls_negotiation(e, in, TlsMode::on);
        check_tls_negotiation(e, in, TlsMode::require);
    }

    Negotiator n(e);
    bool structured = false;
    bool base_alloc = false;
    if (!bare_requests) {
        std::uint32_t flags = 0;
        if (!parse_client_flags(in, flags)) {
            return 0; // the server closes
        }
        in = in.subspan(4);
        n.set_client_flags(flags);
        bool go = false;
        while (!go) {
            OptionHeader h;
            if (!parse_option_header(in, h)) {
                return 0; // bad magic or the stream ended: the server closes
            }
            in = in.subspan(option_header_size);
            Negotiator::Step step;
            if (h.length > max_option_length) {
                step = n.too_long(h);
            } else {
                // A short stream means a client that hung up mid-option: handle() sees fewer
                // bytes than the header says, as a reader that gave up would pass them.
                const std::size_t take = std::min<std::size_t>(h.length, in.size());
                const std::span<const std::byte> payload = in.first(take);
                check_payload_parsers(payload);
                step = n.handle(h, payload);
                in = in.subspan(take);
            }
            const std::span<const std::byte> out = n.out();
            if (step == Negotiator::Step::go && h.option == opt_export_name) {
                if (out.size() != 10 && out.size() != 10 + export_name_reply_zeroes) {
                    broken("EXPORT_NAME reply of a wrong size");
                }
            } else {
                check_option_replies(out, h.option);
            }
            if (step == Negotiator::Step::close) {
                return 0;
            }
            if (step == Negotiator::Step::reply && out.empty()) {
                broken("an option got no reply");
            }
            go = step == Negotiator::Step::go;
        }
        structured = n.structured();
        base_alloc = n.base_allocation_selected();
        if (base_alloc && !structured) {
            broken("base:allocation selected without structured replies");
        }
    } else {
        structured = (cfg & 0x80) != 0;
        base_alloc = structured;
    }

    while (in.size() >= request_size) {
        Request r;
        if (!parse_request(in, r)) {
            if (get32(in.data()) == request_magic) {
                broken("a 28-byte header with the magic was refused");
            }
            return 0; // bad magic: the server closes
        }
        std::array<std::byte, request_size> again{};
        if (build_request(again, r) != request_size ||
            std::memcmp(again.data(), in.data(), request_size) != 0) {
            broken("request does not build back to its bytes");
        }
        check_request_verdict(r, e, structured, base_alloc);
        in = in.subspan(request_size);
        if (r.type == cmd_write && r.length <= in.size()) {
            in = in.subspan(r.length); // the payload, consumed even when refused
        }
    }
    return 0;
}
