// SPDX-License-Identifier: MIT
// The NBD wire format: byte-exact headers, strict bounds on everything a peer sends, and the
// negotiation state machine answering each option as the NBD protocol document says.
#include "apps/nbd/protocol.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

using namespace bioring::apps::nbd;

namespace {

std::vector<std::byte> bytes(std::initializer_list<unsigned> v) {
    std::vector<std::byte> out;
    for (unsigned b : v) {
        out.push_back(std::byte(b));
    }
    return out;
}

void add32(std::vector<std::byte>& v, std::uint32_t x) {
    std::byte b[4];
    put32(b, x);
    v.insert(v.end(), b, b + 4);
}
void add16(std::vector<std::byte>& v, std::uint16_t x) {
    std::byte b[2];
    put16(b, x);
    v.insert(v.end(), b, b + 2);
}
void add_str(std::vector<std::byte>& v, std::string_view s) {
    add32(v, static_cast<std::uint32_t>(s.size()));
    for (char c : s) {
        v.push_back(std::byte(c));
    }
}

// Walk the option replies in @out: (option, type, payload) triples.
struct Reply {
    std::uint32_t option, type;
    std::vector<std::byte> payload;
};
std::vector<Reply> replies(std::span<const std::byte> out) {
    std::vector<Reply> r;
    while (!out.empty()) {
        REQUIRE(out.size() >= option_reply_header_size);
        REQUIRE(get64(out.data()) == opt_reply_magic);
        const std::uint32_t len = get32(out.data() + 16);
        REQUIRE(out.size() >= option_reply_header_size + len);
        r.push_back({get32(out.data() + 8),
                     get32(out.data() + 12),
                     {out.begin() + option_reply_header_size,
                      out.begin() + option_reply_header_size + len}});
        out = out.subspan(option_reply_header_size + len);
    }
    return r;
}

ExportInfo export_info() {
    ExportInfo e;
    e.name = "disk";
    e.size = 1 << 20;
    e.flags = tflag_has_flags | tflag_send_flush | tflag_send_fua | tflag_send_trim |
              tflag_send_write_zeroes | tflag_send_fast_zero | tflag_can_multi_conn |
              tflag_send_cache;
    e.min_block = 512;
    e.preferred_block = 4096;
    e.max_block = 1 << 20;
    return e;
}

std::vector<std::byte> info_payload(std::string_view name, std::initializer_list<unsigned> infos) {
    std::vector<std::byte> p;
    add_str(p, name);
    add16(p, static_cast<std::uint16_t>(infos.size()));
    for (unsigned i : infos) {
        add16(p, static_cast<std::uint16_t>(i));
    }
    return p;
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("the handshake and headers are byte-exact big-endian") {
        std::array<std::byte, 64> b{};
        REQUIRE(build_handshake(b) == 18);
        CHECK(std::memcmp(b.data(), "NBDMAGICIHAVEOPT", 16) == 0);
        CHECK(get16(b.data() + 16) == (flag_fixed_newstyle | flag_no_zeroes));
        CHECK(build_handshake(std::span<std::byte>(b.data(), 17)) == 0);

        REQUIRE(build_simple_reply(b, 0x0102030405060708ull, err_io) == 16);
        CHECK(b[0] == std::byte{0x67});
        CHECK(get32(b.data() + 4) == 5);
        CHECK(b[8] == std::byte{1});
        CHECK(b[15] == std::byte{8});

        Request r{cmd_flag_fua, cmd_write, 42, 4096, 512};
        REQUIRE(build_request(b, r) == request_size);
        Request back;
        REQUIRE(parse_request(std::span<const std::byte>(b.data(), request_size), back));
        CHECK(back.flags == cmd_flag_fua);
        CHECK(back.type == cmd_write);
        CHECK(back.cookie == 42);
        CHECK(back.offset == 4096);
        CHECK(back.length == 512);
        CHECK_FALSE(parse_request(std::span<const std::byte>(b.data(), request_size - 1), back));
        b[0] = std::byte{0};
        CHECK_FALSE(parse_request(std::span<const std::byte>(b.data(), request_size), back));
    }

    TEST_CASE("client flags: FIXED_NEWSTYLE is required and unknown bits are refused") {
        std::uint32_t f = 0;
        CHECK(parse_client_flags(bytes({0, 0, 0, 3}), f));
        CHECK(f == 3);
        CHECK(parse_client_flags(bytes({0, 0, 0, 1}), f));
        CHECK_FALSE(parse_client_flags(bytes({0, 0, 0, 0}), f));
        CHECK_FALSE(parse_client_flags(bytes({0, 0, 0, 7}), f));
        CHECK_FALSE(parse_client_flags(bytes({0, 0, 3}), f));
    }

    TEST_CASE("option headers need IHAVEOPT and a full header") {
        std::vector<std::byte> h;
        add32(h, 0x49484156);
        add32(h, 0x454f5054);
        add32(h, opt_go);
        add32(h, 77);
        OptionHeader oh;
        REQUIRE(parse_option_header(h, oh));
        CHECK(oh.option == opt_go);
        CHECK(oh.length == 77);
        CHECK_FALSE(parse_option_header(std::span<const std::byte>(h.data(), 15), oh));
        h[0] = std::byte{0};
        CHECK_FALSE(parse_option_header(h, oh));
    }

    TEST_CASE("INFO/GO payloads: lengths must match the buffer exactly") {
        InfoRequest r;
        const auto ok = info_payload("disk", {info_block_size, 99});
        CHECK(parse_info_request(ok, r) == 0);
        CHECK(r.name == "disk");
        CHECK(r.want_block_size);
        CHECK_FALSE(r.want_name);

        auto p = info_payload("disk", {info_block_size});
        p.push_back(std::byte{0}); // trailing byte
        CHECK(parse_info_request(p, r) == rep_err_invalid);
        p = info_payload("disk", {info_block_size});
        p.pop_back(); // short request list
        CHECK(parse_info_request(p, r) == rep_err_invalid);
        std::vector<std::byte> lie;
        add32(lie, 0xffffffffu); // a name length past the buffer
        add16(lie, 0);
        CHECK(parse_info_request(lie, r) == rep_err_invalid);
        CHECK(parse_info_request(std::span<const std::byte>(), r) == rep_err_invalid);
        CHECK(parse_info_request(info_payload(std::string(max_string + 1, 'x'), {}), r) ==
              rep_err_invalid);
        CHECK(parse_info_request(info_payload(std::string(max_string, 'x'), {}), r) == 0);
    }

    TEST_CASE("meta-context payloads: every query is bounds-checked before use") {
        std::vector<std::byte> p;
        add_str(p, "disk");
        add32(p, 2);
        add_str(p, "base:allocation");
        add_str(p, "qemu:dirty-bitmap:x");
        MetaRequest r;
        REQUIRE(parse_meta_request(p, r) == 0);
        CHECK(r.count == 2);
        std::span<const std::byte> rest = r.queries;
        std::string_view q;
        REQUIRE(next_meta_query(rest, q));
        CHECK(q == "base:allocation");
        REQUIRE(next_meta_query(rest, q));
        CHECK(q == "qemu:dirty-bitmap:x");
        CHECK_FALSE(next_meta_query(rest, q));

        std::vector<std::byte> bad = p;
        bad.pop_back();
        CHECK(parse_meta_request(bad, r) == rep_err_invalid);
        bad = p;
        put32(bad.data() + 8, 3); // one query more than present
        CHECK(parse_meta_request(bad, r) == rep_err_invalid);
        bad = p;
        bad.push_back(std::byte{1});
        CHECK(parse_meta_request(bad, r) == rep_err_invalid);
        bad.clear();
        add_str(bad, "disk");
        add32(bad, static_cast<std::uint32_t>(max_meta_queries + 1));
        CHECK(parse_meta_request(bad, r) == rep_err_too_big);
    }

    TEST_CASE("negotiation: GO answers INFO_EXPORT and the block sizes asked for and ACK") {
        const ExportInfo e = export_info();
        Negotiator n(e);
        n.set_client_flags(flag_c_fixed_newstyle | flag_c_no_zeroes);
        auto go = info_payload("disk", {info_block_size, info_name});
        auto step = n.handle({opt_go, static_cast<std::uint32_t>(go.size())}, go);
        CHECK(step == Negotiator::Step::go);
        auto r = replies(n.out());
        REQUIRE(r.size() == 4);
        CHECK(r[0].type == rep_info);
        REQUIRE(r[0].payload.size() == 12);
        CHECK(get16(r[0].payload.data()) == info_export);
        CHECK(get64(r[0].payload.data() + 2) == e.size);
        CHECK(get16(r[0].payload.data() + 10) == e.flags);
        CHECK(r[1].type == rep_info);
        CHECK(get16(r[1].payload.data()) == info_name);
        CHECK(r[2].type == rep_info);
        REQUIRE(r[2].payload.size() == 14);
        CHECK(get16(r[2].payload.data()) == info_block_size);
        CHECK(get32(r[2].payload.data() + 2) == 512);
        CHECK(get32(r[2].payload.data() + 6) == 4096);
        CHECK(get32(r[2].payload.data() + 10) == (1u << 20));
        CHECK(r[3].type == rep_ack);

        // Without the request there is no block size reply (the server then accepts anything).
        Negotiator m(e);
        auto info = info_payload("", {});
        CHECK(m.handle({opt_info, static_cast<std::uint32_t>(info.size())}, info) ==
              Negotiator::Step::reply);
        r = replies(m.out());
        REQUIRE(r.size() == 2);
        CHECK(r[0].type == rep_info);
        CHECK(r[1].type == rep_ack);
    }

    TEST_CASE(
        "negotiation: unknown export and unknown option and malformed payloads keep it going") {
        const ExportInfo e = export_info();
        Negotiator n(e);
        auto go = info_payload("other", {});
        CHECK(n.handle({opt_go, static_cast<std::uint32_t>(go.size())}, go) ==
              Negotiator::Step::reply);
        auto r = replies(n.out());
        REQUIRE(r.size() == 1);
        CHECK(r[0].type == rep_err_unknown);

        CHECK(n.handle({opt_starttls, 0}, {}) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_unsup);
        CHECK(n.handle({0x12345678u, 0}, {}) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_unsup);
        auto junk = bytes({1, 2, 3});
        CHECK(n.handle({opt_go, 3}, junk) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_invalid);
        CHECK(n.handle({opt_structured_reply, 3}, junk) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_invalid);
        CHECK_FALSE(n.structured());
        CHECK(n.handle({opt_list, 3}, junk) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_invalid);

        // Too long to read: refused and closed; a header that lies about the payload likewise.
        CHECK(n.too_long({opt_go, 1u << 30}) == Negotiator::Step::close);
        CHECK(replies(n.out())[0].type == rep_err_too_big);
        CHECK(n.handle({opt_go, 4}, junk) == Negotiator::Step::close);
    }

    TEST_CASE("negotiation: LIST names the export; ABORT acknowledges and closes") {
        const ExportInfo e = export_info();
        Negotiator n(e);
        CHECK(n.handle({opt_list, 0}, {}) == Negotiator::Step::reply);
        auto r = replies(n.out());
        REQUIRE(r.size() == 2);
        CHECK(r[0].type == rep_server);
        REQUIRE(r[0].payload.size() == 8);
        CHECK(get32(r[0].payload.data()) == 4);
        CHECK(std::memcmp(r[0].payload.data() + 4, "disk", 4) == 0);
        CHECK(r[1].type == rep_ack);
        CHECK(n.handle({opt_abort, 0}, {}) == Negotiator::Step::close);
        CHECK(replies(n.out())[0].type == rep_ack);
    }

    TEST_CASE("negotiation: an export with an empty name (null data) is listed and named") {
        ExportInfo e = export_info();
        e.name = std::string_view{}; // data() == nullptr: must not reach memcpy (UBSan)
        Negotiator n(e);
        CHECK(n.handle({opt_list, 0}, {}) == Negotiator::Step::reply);
        auto r = replies(n.out());
        REQUIRE(r.size() == 2);
        CHECK(r[0].type == rep_server);
        REQUIRE(r[0].payload.size() == 4);
        CHECK(get32(r[0].payload.data()) == 0);
        CHECK(r[1].type == rep_ack);
    }

    TEST_CASE("negotiation: EXPORT_NAME answers size and flags with the zeroes unless NO_ZEROES") {
        const ExportInfo e = export_info();
        Negotiator n(e);
        n.set_client_flags(flag_c_fixed_newstyle);
        auto name = bytes({'d', 'i', 's', 'k'});
        CHECK(n.handle({opt_export_name, 4}, name) == Negotiator::Step::go);
        REQUIRE(n.out().size() == 10 + 124);
        CHECK(get64(n.out().data()) == e.size);
        CHECK(get16(n.out().data() + 8) == e.flags);

        Negotiator m(e);
        m.set_client_flags(flag_c_fixed_newstyle | flag_c_no_zeroes);
        CHECK(m.handle({opt_export_name, 0}, {}) == Negotiator::Step::go);
        CHECK(m.out().size() == 10);
        auto wrong = bytes({'x'});
        CHECK(m.handle({opt_export_name, 1}, wrong) == Negotiator::Step::close);
    }

    TEST_CASE("negotiation: --tls require answers only STARTTLS and ABORT before TLS") {
        const ExportInfo e = export_info();
        Negotiator n(e, TlsMode::require);
        auto go = info_payload("disk", {});
        const auto go_len = static_cast<std::uint32_t>(go.size());
        CHECK(n.handle({opt_go, go_len}, go) == Negotiator::Step::reply);
        auto r = replies(n.out());
        REQUIRE(r.size() == 1);
        CHECK(r[0].type == rep_err_tls_reqd);
        for (std::uint32_t o : {std::uint32_t{opt_list}, std::uint32_t{opt_structured_reply},
                                std::uint32_t{opt_info}, 0x12345678u}) {
            CAPTURE(o);
            CHECK(n.handle({o, 0}, {}) == Negotiator::Step::reply);
            r = replies(n.out());
            REQUIRE(r.size() == 1);
            CHECK(r[0].type == rep_err_tls_reqd);
        }
        CHECK_FALSE(n.structured());
        // EXPORT_NAME cannot be refused with an error: the connection closes, nothing sent.
        auto name = bytes({'d', 'i', 's', 'k'});
        CHECK(n.handle({opt_export_name, 4}, name) == Negotiator::Step::close);
        CHECK(n.out().empty());
        // STARTTLS: a payload is invalid; an empty one is acknowledged and starts TLS.
        CHECK(n.handle({opt_starttls, 3}, bytes({1, 2, 3})) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_invalid);
        CHECK(n.handle({opt_starttls, 0}, {}) == Negotiator::Step::starttls);
        r = replies(n.out());
        REQUIRE(r.size() == 1);
        CHECK(r[0].type == rep_ack);
        CHECK_FALSE(n.tls_active());
        n.tls_started();
        CHECK(n.tls_active());
        // Inside TLS: no second STARTTLS, everything else as without TLS.
        CHECK(n.handle({opt_starttls, 0}, {}) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_invalid);
        CHECK(n.handle({opt_list, 0}, {}) == Negotiator::Step::reply);
        CHECK(replies(n.out()).back().type == rep_ack);
        CHECK(n.handle({opt_go, go_len}, go) == Negotiator::Step::go);

        // ABORT is answered before TLS.
        Negotiator a(e, TlsMode::require);
        CHECK(a.handle({opt_abort, 0}, {}) == Negotiator::Step::close);
        CHECK(replies(a.out())[0].type == rep_ack);
    }

    TEST_CASE("negotiation: --tls on serves options in clear and STARTTLS forgets them") {
        const ExportInfo e = export_info();
        Negotiator n(e, TlsMode::on);
        CHECK(n.handle({opt_structured_reply, 0}, {}) == Negotiator::Step::reply);
        CHECK(n.structured());
        std::vector<std::byte> p;
        add_str(p, "disk");
        add32(p, 1);
        add_str(p, "base:allocation");
        const auto len = static_cast<std::uint32_t>(p.size());
        CHECK(n.handle({opt_set_meta_context, len}, p) == Negotiator::Step::reply);
        CHECK(n.base_allocation_selected());
        CHECK(n.handle({opt_starttls, 0}, {}) == Negotiator::Step::starttls);
        n.tls_started();
        // A man in the middle could have sent them: both are gone.
        CHECK_FALSE(n.structured());
        CHECK_FALSE(n.base_allocation_selected());
        // A clear client of the same mode goes straight to GO.
        Negotiator m(e, TlsMode::on);
        auto go = info_payload("", {});
        CHECK(m.handle({opt_go, static_cast<std::uint32_t>(go.size())}, go) ==
              Negotiator::Step::go);
        CHECK_FALSE(m.tls_active());
    }

    TEST_CASE("negotiation: meta contexts need structured replies and select base:allocation") {
        const ExportInfo e = export_info();
        Negotiator n(e);
        std::vector<std::byte> p;
        add_str(p, "disk");
        add32(p, 1);
        add_str(p, "base:allocation");
        const auto len = static_cast<std::uint32_t>(p.size());
        CHECK(n.handle({opt_set_meta_context, len}, p) == Negotiator::Step::reply);
        CHECK(replies(n.out())[0].type == rep_err_invalid);

        // LIST works without structured replies; "base:" lists the namespace.
        std::vector<std::byte> l;
        add_str(l, "disk");
        add32(l, 1);
        add_str(l, "base:");
        CHECK(n.handle({opt_list_meta_context, static_cast<std::uint32_t>(l.size())}, l) ==
              Negotiator::Step::reply);
        auto r = replies(n.out());
        REQUIRE(r.size() == 2);
        CHECK(r[0].type == rep_meta_context);
        CHECK(r[1].type == rep_ack);

        CHECK(n.handle({opt_structured_reply, 0}, {}) == Negotiator::Step::reply);
        CHECK(n.structured());
        CHECK(n.handle({opt_set_meta_context, len}, p) == Negotiator::Step::reply);
        r = replies(n.out());
        REQUIRE(r.size() == 2);
        CHECK(r[0].type == rep_meta_context);
        CHECK(get32(r[0].payload.data()) == base_allocation_id);
        CHECK(std::string(reinterpret_cast<const char*>(r[0].payload.data()) + 4,
                          r[0].payload.size() - 4) == "base:allocation");
        CHECK(n.base_allocation_selected());

        // An unknown context selects nothing (and drops the earlier selection).
        std::vector<std::byte> q;
        add_str(q, "disk");
        add32(q, 1);
        add_str(q, "qemu:dirty-bitmap:b");
        CHECK(n.handle({opt_set_meta_context, static_cast<std::uint32_t>(q.size())}, q) ==
              Negotiator::Step::reply);
        r = replies(n.out());
        REQUIRE(r.size() == 1);
        CHECK(r[0].type == rep_ack);
        CHECK_FALSE(n.base_allocation_selected());
    }

    TEST_CASE("requests are checked against the export before anything is done") {
        ExportInfo e = export_info();
        CHECK(check_request({0, cmd_read, 1, 0, 4096}, e, false, false) == 0);
        CHECK(check_request({0, cmd_read, 1, e.size - 1, 1}, e, false, false) == 0);
        CHECK(check_request({0, cmd_read, 1, e.size - 1, 2}, e, false, false) == err_inval);
        CHECK(check_request({0, cmd_read, 1, UINT64_MAX, 2}, e, false, false) == err_inval);
        CHECK(check_request({0, cmd_write, 1, e.size, 1}, e, false, false) == err_nospc);
        CHECK(check_request({0, cmd_read, 1, 0, 0}, e, false, false) == err_inval);
        e.size = 64u << 20;
        CHECK(check_request({0, cmd_read, 1, 0, (1u << 20) + 1}, e, false, false) == err_overflow);
        CHECK(check_request({0, cmd_write, 1, 0, (1u << 20) + 1}, e, false, false) == err_overflow);
        CHECK(check_request({0, cmd_trim, 1, 0, 8u << 20}, e, false, false) == 0);
        CHECK(check_request({cmd_flag_no_hole, cmd_write, 1, 0, 512}, e, false, false) ==
              err_inval);
        CHECK(check_request({cmd_flag_no_hole | cmd_flag_fast_zero, cmd_write_zeroes, 1, 0, 512}, e,
                            false, false) == 0);
        CHECK(check_request({cmd_flag_fua, cmd_flush, 1, 0, 0}, e, false, false) == 0);
        CHECK(check_request({0, cmd_block_status, 1, 0, 512}, e, false, false) == err_inval);
        CHECK(check_request({0, cmd_block_status, 1, 0, 512}, e, true, false) == err_inval);
        CHECK(check_request({cmd_flag_req_one, cmd_block_status, 1, 0, 512}, e, true, true) == 0);
        CHECK(check_request({0, 99, 1, 0, 512}, e, false, false) == err_inval);

        e.flags = static_cast<std::uint16_t>((e.flags | tflag_read_only) & ~tflag_send_trim);
        CHECK(check_request({0, cmd_write, 1, 0, 512}, e, false, false) == err_perm);
        CHECK(check_request({0, cmd_write_zeroes, 1, 0, 512}, e, false, false) == err_perm);
        CHECK(check_request({0, cmd_trim, 1, 0, 512}, e, false, false) == err_perm);
        CHECK(check_request({0, cmd_read, 1, 0, 512}, e, false, false) == 0);
        e.flags = static_cast<std::uint16_t>(e.flags & ~tflag_read_only);
        CHECK(check_request({0, cmd_trim, 1, 0, 512}, e, false, false) == err_inval);
    }

    TEST_CASE("structured reply chunks: data and hole and block status and error and done") {
        std::array<std::byte, 256> b{};
        REQUIRE(build_offset_data(b, 0, 7, 4096, 512) == 28);
        CHECK(get32(b.data()) == structured_reply_magic);
        CHECK(get16(b.data() + 6) == chunk_offset_data);
        CHECK(get32(b.data() + 16) == 520);
        CHECK(get64(b.data() + 20) == 4096);

        REQUIRE(build_offset_hole(b, reply_flag_done, 7, 8192, 4096) == 32);
        CHECK(get16(b.data() + 4) == reply_flag_done);
        CHECK(get16(b.data() + 6) == chunk_offset_hole);
        CHECK(get32(b.data() + 16) == 12);
        CHECK(get32(b.data() + 28) == 4096);

        Extent ex[2] = {{4096, 0}, {8192, state_hole | state_zero}};
        REQUIRE(build_block_status(b, 7, base_allocation_id, ex) == 20 + 4 + 16);
        CHECK(get32(b.data() + 16) == 20);
        CHECK(get32(b.data() + 20) == base_allocation_id);
        CHECK(get32(b.data() + 32) == 8192);
        CHECK(get32(b.data() + 36) == 3);
        CHECK(build_block_status(b, 7, 1, {}) == 0);
        Extent zero[1] = {{0, 0}};
        CHECK(build_block_status(b, 7, 1, zero) == 0);
        CHECK(build_block_status(std::span<std::byte>(b.data(), 39), 7, 1, ex) == 0);

        REQUIRE(build_error_chunk(b, 7, err_io, "bad") == 20 + 6 + 3);
        CHECK(get16(b.data() + 6) == chunk_error);
        CHECK(get32(b.data() + 20) == err_io);
        CHECK(get16(b.data() + 24) == 3);
        CHECK(build_error_chunk(b, 7, err_io, std::string(300, 'x')) == 0);

        REQUIRE(build_done(b, 9) == 20);
        CHECK(get16(b.data() + 4) == reply_flag_done);
        CHECK(get16(b.data() + 6) == chunk_none);
    }

    TEST_CASE("errno values map to the protocol's errors") {
        CHECK(error_from_errno(-EROFS) == err_perm);
        CHECK(error_from_errno(-EPERM) == err_perm);
        CHECK(error_from_errno(-EINVAL) == err_inval);
        CHECK(error_from_errno(-EDQUOT) == err_nospc);
        CHECK(error_from_errno(-ENOSPC) == err_nospc);
        CHECK(error_from_errno(-EOPNOTSUPP) == err_notsup);
        CHECK(error_from_errno(-EIO) == err_io);
        CHECK(error_from_errno(-ENODEV) == err_io);
    }

} // TEST_SUITE
