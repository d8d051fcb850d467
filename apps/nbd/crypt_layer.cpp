// SPDX-License-Identifier: MIT
// CryptLayer (crypt_layer.hpp): XTS per sector between the front end and the device below.
#include "apps/nbd/crypt_layer.hpp"

#include <bioring/alloc/buffer_pool.hpp>

#include <bioring/runtime/this_bio.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace bioring::apps::nbd {

namespace {

std::uint64_t round_down(std::uint64_t v, std::uint64_t a) noexcept {
    return v & ~(a - 1);
}
std::uint64_t round_up(std::uint64_t v, std::uint64_t a) noexcept {
    return (v + a - 1) & ~(a - 1);
}

std::uint64_t next_generation() noexcept {
    static std::atomic<std::uint64_t> g{0};
    return g.fetch_add(1, std::memory_order_relaxed) + 1;
}

} // namespace

CryptLayer::CryptLayer(BlockDevice& lower, std::span<const std::byte> key, SectorFormat fmt,
                       std::uint64_t offset, std::size_t pool_size)
    : BlockDevice("crypt"), lower_(lower), key_(key.begin(), key.end()), fmt_(fmt), offset_(offset),
      generation_(next_generation()) {
    if (std::string why = validate(fmt_); !why.empty()) {
        throw std::invalid_argument(why);
    }
    if (offset_ % fmt_.sector_size != 0) {
        throw std::invalid_argument("--offset " + std::to_string(offset_) +
                                    " is not a multiple of the sector size " +
                                    std::to_string(fmt_.sector_size));
    }
    if (offset_ >= lower_.size()) {
        throw std::invalid_argument("--offset " + std::to_string(offset_) +
                                    " leaves no data in a device of " +
                                    std::to_string(lower_.size()) + " bytes");
    }
    size_ = round_down(lower_.size() - offset_, fmt_.sector_size);
    Ciphers probe(key_); // throws for a bad key now, not on the first request
    BioSet& p = probe_set();
    std::size_t pad = frame_pad(do_read(p, nullptr, 0, 0));
    pad = std::max(pad, frame_pad(do_write(p, nullptr, 0, 0, false, false)));
    pad = std::max(pad, frame_pad(do_flush(p)));
    pad = std::max(pad, frame_pad(do_refuse(p, 0, 0)));
    pad = std::max(pad, frame_pad(do_block_status(p, 0, 0, {})));
    init_bioset(pad, pool_size);
}

CryptLayer::~CryptLayer() {
    OPENSSL_cleanse(key_.data(), key_.size());
}

CryptLayer::Ciphers* CryptLayer::ciphers() noexcept {
    struct Cached {
        std::uint64_t generation = 0;
        Ciphers* c = nullptr;
    };
    thread_local Cached tl;
    if (tl.generation == generation_) [[likely]] {
        return tl.c;
    }
    std::lock_guard g(ciphers_mu_);
    const auto me = std::this_thread::get_id();
    for (auto& [id, c] : ciphers_) {
        if (id == me) {
            tl = {generation_, c.get()};
            return c.get();
        }
    }
    try {
        ciphers_.emplace_back(me, std::make_unique<Ciphers>(key_));
    } catch (...) {
        return nullptr;
    }
    tl = {generation_, ciphers_.back().second.get()};
    return tl.c;
}

std::size_t CryptLayer::bounce_size(std::uint64_t len) const noexcept {
    return static_cast<std::size_t>(std::min<std::uint64_t>(
        BufferPool::max_buffer, round_up(len, fmt_.sector_size) + fmt_.sector_size));
}

Task<IoResult> CryptLayer::do_read(BioSet& bs, std::byte* buf, std::uint32_t len,
                                   std::uint64_t off) {
    LayerRequest req(stats_, co_await this_bio, bs);
    if (!in_range(off, len)) {
        co_return IoResult{-EINVAL};
    }
    Ciphers* c = ciphers();
    if (c == nullptr) {
        co_return IoResult{-ENOMEM};
    }
    const std::uint32_t ss = fmt_.sector_size;
    if (off % ss == 0 && len % ss == 0) {
        IoResult r =
            co_await call_lower(lower_, [&] { return lower_.read(buf, len, offset_ + off); });
        if (!r) {
            co_return r;
        }
        co_return IoResult{c->dec.crypt_sectors(buf, buf, len, fmt_, off) ? 0 : -EIO};
    }
    OwnedBuffer b = OwnedBuffer::alloc(bounce_size(len));
    if (!b) {
        co_return IoResult{-ENOMEM};
    }
    const std::uint64_t piece = round_down(b.capacity(), ss);
    const std::uint64_t end = off + len;
    for (std::uint64_t pos = off; pos < end;) {
        const std::uint64_t a = round_down(pos, ss);
        const std::uint64_t piece_end = std::min(end, a + piece);
        const std::uint64_t span = round_up(piece_end, ss) - a;
        IoResult r = co_await call_lower(lower_, [&] {
            return lower_.read(b.data(), static_cast<std::uint32_t>(span), offset_ + a);
        });
        if (!r) {
            co_return r;
        }
        if (!c->dec.crypt_sectors(b.data(), b.data(), span, fmt_, a)) {
            co_return IoResult{-EIO};
        }
        std::memcpy(buf + (pos - off), b.data() + (pos - a), piece_end - pos);
        pos = piece_end;
    }
    co_return IoResult{0};
}

Task<IoResult> CryptLayer::zero(std::uint64_t off, std::uint32_t len, bool, bool fast) {
    if (fast) {
        return do_refuse(*bioset_, off, len); // encrypted zeroes are written: never fast
    }
    return do_write(*bioset_, nullptr, len, off, false, true);
}

Task<IoResult> CryptLayer::do_write(BioSet& bs, const std::byte* src, std::uint32_t len,
                                    std::uint64_t off, bool fua, bool zeroes) {
    LayerRequest req(stats_, co_await this_bio, bs);
    if (!in_range(off, len)) {
        co_return IoResult{-ENOSPC};
    }
    Ciphers* c = ciphers();
    OwnedBuffer b = OwnedBuffer::alloc(bounce_size(len));
    if (c == nullptr || !b) {
        co_return IoResult{-ENOMEM};
    }
    const std::uint32_t ss = fmt_.sector_size;
    const std::uint64_t end = off + len;
    auto hold = lock_.lock(round_down(off, ss), round_up(end, ss));
    co_await hold;
    const std::uint64_t piece = round_down(b.capacity(), ss);
    for (std::uint64_t pos = off; pos < end;) {
        const std::uint64_t pa = round_down(pos, ss);
        const std::uint64_t piece_end = std::min(end, pa + piece);
        const std::uint64_t pb = round_up(piece_end, ss);
        // Partial sectors at either end: decrypt what is there, then patch it.
        const std::uint64_t tail = pb - ss;
        const bool head_partial = pos != pa;
        const bool tail_partial = piece_end != pb && !(head_partial && tail == pa);
        if (head_partial) {
            IoResult r = co_await call_lower(
                lower_, [&] { return lower_.read(b.data(), ss, offset_ + pa); });
            if (!r) {
                co_return r;
            }
            if (!c->dec.crypt_sectors(b.data(), b.data(), ss, fmt_, pa)) {
                co_return IoResult{-EIO};
            }
        }
        if (tail_partial) {
            std::byte* t = b.data() + (tail - pa);
            IoResult r =
                co_await call_lower(lower_, [&] { return lower_.read(t, ss, offset_ + tail); });
            if (!r) {
                co_return r;
            }
            if (!c->dec.crypt_sectors(t, t, ss, fmt_, tail)) {
                co_return IoResult{-EIO};
            }
        }
        if (zeroes) {
            std::memset(b.data() + (pos - pa), 0, piece_end - pos);
        } else {
            std::memcpy(b.data() + (pos - pa), src + (pos - off), piece_end - pos);
        }
        if (!c->enc.crypt_sectors(b.data(), b.data(), pb - pa, fmt_, pa)) {
            co_return IoResult{-EIO};
        }
        IoResult r = co_await call_lower(lower_, [&] {
            return lower_.write(b.data(), static_cast<std::uint32_t>(pb - pa), offset_ + pa, fua);
        });
        if (!r) {
            co_return r;
        }
        pos = piece_end;
    }
    co_return IoResult{0};
}

Task<IoResult> CryptLayer::do_flush(BioSet& bs) {
    LayerRequest req(stats_, co_await this_bio, bs);
    co_return co_await call_lower(lower_, [&] { return lower_.flush(); });
}

Task<IoResult> CryptLayer::do_refuse(BioSet& bs, std::uint64_t, std::uint32_t) {
    LayerRequest req(stats_, co_await this_bio, bs);
    co_return IoResult{-EOPNOTSUPP};
}

Task<IoResult> CryptLayer::do_block_status(BioSet& bs, std::uint64_t off, std::uint32_t len,
                                           std::span<Extent> out) {
    LayerRequest req(stats_, co_await this_bio, bs);
    if (!in_range(off, len) || len == 0 || out.empty()) {
        co_return IoResult{-EINVAL};
    }
    out[0] = Extent{len, 0}; // ciphertext hides holes: everything is data
    co_return IoResult{1};
}

} // namespace bioring::apps::nbd
