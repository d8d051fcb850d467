// SPDX-License-Identifier: MIT
// A raw NBD client's handshake for the in-process front-end tests: fixed newstyle, then
// OPT_GO on the default export with simple replies.
#pragma once

#include "apps/nbd/protocol.hpp"

#include <bioring/io/socket.hpp>
#include <bioring/runtime/task.hpp>

#include <array>
#include <cstddef>

namespace nbd_test {

/// Negotiate on @s up to the transmission phase. Returns (co_await): false on any
/// unexpected byte or a short read.
inline bioring::Task<bool> go_default_export(bioring::Socket& s) {
    using namespace bioring::apps::nbd;
    std::array<std::byte, 512> b{};
    if ((co_await s.recv_exact(b.data(), handshake_size)).res != int(handshake_size)) {
        co_return false;
    }
    put32(b.data(), flag_c_fixed_newstyle | flag_c_no_zeroes);
    put64(b.data() + 4, ihave_opt);
    put32(b.data() + 12, opt_go);
    put32(b.data() + 16, 6);
    put32(b.data() + 20, 0); // empty name
    put16(b.data() + 24, 0); // no info requests
    if ((co_await s.send_all(b.data(), 26)).res != 26) {
        co_return false;
    }
    for (;;) { // INFO_EXPORT, then ACK
        if ((co_await s.recv_exact(b.data(), option_reply_header_size)).res !=
            int(option_reply_header_size)) {
            co_return false;
        }
        const std::uint32_t type = get32(b.data() + 12), len = get32(b.data() + 16);
        if (len > b.size() - option_reply_header_size ||
            (len > 0 && (co_await s.recv_exact(b.data() + 20, len)).res != int(len))) {
            co_return false;
        }
        if (type == rep_ack) {
            co_return true;
        }
    }
}

} // namespace nbd_test
