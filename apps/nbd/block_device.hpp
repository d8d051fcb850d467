// SPDX-License-Identifier: MIT
// BlockDevice: the small block-device interface bioring-nbd's layers stack on, as the
// kernel's device-mapper targets stack on the device below.
//
// Each layer (file, crypt, NBD front end) owns a BioSet whose front pad is sized for that
// layer's per-request coroutine frame, as dm-crypt has its own bioset: a request that
// passes through a layer takes exactly one object from that layer's set (the frame, with
// the request's Bio behind it), so a request costs one allocation per layer and no heap
// call once the slab caches are warm. LayerStats counts it; stats_table() prints it.
//
// Allocation failure (mempool rule, as the kernel's stacked biosets): when a layer's slab
// cache, its backing allocator and its reserve are all dry, a request that needs a frame
// from the layer below waits for that layer to free one (call_lower()) — it never fails
// and never throws. This is deadlock-free because of the forward-progress rule:
//   - a request holds at most one object of each layer at a time (a layer calls the layer
//     below sequentially, one request outstanding);
//   - it waits for an object of a layer only while holding objects of the layers above it,
//     never of that layer or one below (the front end's reader holds no front object while
//     it waits for one);
//   - a layer's requests wait on nothing but I/O, the layer below, and range locks held by
//     requests of the same layer that follow this rule.
// So the bottom layer's objects are always freed, then the next one's, and so on: any
// reserve >= 1 guarantees progress, with every reserve object in flight freeing through
// the slow path that wakes a waiter. Each layer's reserve is sized to --max-requests
// (main.cpp) so that one connection at its bound is served from the reserves without
// waiting; more connections than that wait, they do not fail.
//
// Requests are coroutines returning IoResult: 0 (or a count where said) or -errno. Offsets
// and lengths are bytes; a layer serves unaligned requests itself (read-modify-write), so
// alignment() is only what is efficient. Callers check ranges against size() first (the
// NBD front end does); a layer still refuses an out-of-range request with -EINVAL.
// THREADING. A device is shared by every reactor: requests may run concurrently on any
// reactor thread; each runs entirely on the thread that awaits it.
#pragma once

#include "apps/nbd/protocol.hpp"

#include <bioring/alloc/bioset.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/task.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace bioring::apps::nbd {

/// Per-layer request accounting (relaxed atomics: reports only).
struct LayerStats {
    std::atomic<std::uint64_t> requests{0}; ///< requests started in this layer
    std::atomic<std::uint64_t> frames{0};   ///< frames taken from the layer's BioSet
    std::atomic<std::uint64_t> foreign{0};  ///< frames that came from anywhere else
    std::atomic<std::int64_t> in_use{0};    ///< requests in flight in this layer
};

/// Counts one request of a layer for as long as it lives (a local of the request frame).
class LayerRequest {
public:
    /// @bio: the request's Bio (co_await this_bio); @set: the layer's BioSet.
    LayerRequest(LayerStats& s, const Bio* bio, const BioSet& set) noexcept : s_(s) {
        s_.requests.fetch_add(1, std::memory_order_relaxed);
        (bio != nullptr && bio->set == &set ? s_.frames : s_.foreign)
            .fetch_add(1, std::memory_order_relaxed);
        s_.in_use.fetch_add(1, std::memory_order_relaxed);
    }
    ~LayerRequest() { s_.in_use.fetch_sub(1, std::memory_order_relaxed); }
    LayerRequest(const LayerRequest&) = delete;
    LayerRequest& operator=(const LayerRequest&) = delete;

private:
    LayerStats& s_;
};

/// The front pad a coroutine frame needs: @t's frame was built (not started) in a set whose
/// pad is smaller than any frame, so it came from an oversized cache whose pad is the
/// frame's size rounded up to 64. Destroys @t. Context: any thread.
template <class T>
std::size_t frame_pad(Task<T> t) noexcept {
    const Bio* bio = t ? t.handle().promise().bio() : nullptr;
    return bio != nullptr ? bio->front_pad : 0;
}

/// What every layer has: a name, its own BioSet (padded to its request frames) and its
/// request accounting.
class Layer {
public:
    /// @name for reports. The derived layer calls init_bioset() in its constructor.
    explicit Layer(std::string name) : name_(std::move(name)) {}
    virtual ~Layer() = default;
    Layer(const Layer&) = delete;
    Layer& operator=(const Layer&) = delete;

    const std::string& name() const noexcept { return name_; }
    BioSet& bioset() noexcept { return *bioset_; }
    LayerStats& stats() noexcept { return stats_; }

protected:
    /// Create the layer's BioSet: @front_pad from frame_pad() of each of the layer's
    /// request coroutines (the compiler decides frame sizes), @pool_size reserve objects.
    void init_bioset(std::size_t front_pad, std::size_t pool_size);
    /// A set to build probe frames in (frame_pad()): every frame is oversized there.
    static BioSet& probe_set();

    std::string name_;
    std::unique_ptr<BioSet> bioset_;
    LayerStats stats_;
};

class BlockDevice : public Layer {
public:
    using Layer::Layer;

    /// Bytes exported.
    virtual std::uint64_t size() const noexcept = 0;
    /// The smallest unit served without read-modify-write (a power of two).
    virtual std::uint32_t alignment() const noexcept = 0;
    /// Whether trim() does something (else it fails with -EOPNOTSUPP).
    virtual bool can_trim() const noexcept = 0;
    /// Whether zero(fast = true) can ever succeed.
    virtual bool can_fast_zero() const noexcept = 0;
    /// Whether block_status() can report a hole now (else everything is data and the
    /// front end does not ask before a read).
    virtual bool may_have_holes() const noexcept = 0;

    /// Read @len bytes at @off into @buf (any alignment).
    virtual Task<IoResult> read(std::byte* buf, std::uint32_t len, std::uint64_t off) = 0;
    /// Write @len bytes from @buf at @off; with @fua the data is durable on return.
    virtual Task<IoResult> write(const std::byte* buf, std::uint32_t len, std::uint64_t off,
                                 bool fua) = 0;
    /// Make every completed write durable (all connections', all threads').
    virtual Task<IoResult> flush() = 0;
    /// Discard [off, off+len): afterwards the range reads as anything (here: zeroes or the
    /// old data). Returns: 0, or -EOPNOTSUPP where the layer cannot discard.
    virtual Task<IoResult> trim(std::uint64_t off, std::uint32_t len) = 0;
    /// Make [off, off+len) read as zeroes. @may_trim: a hole is acceptable (no NO_HOLE);
    /// @fast: fail with -EOPNOTSUPP rather than write zeroes (NBD FAST_ZERO).
    virtual Task<IoResult> zero(std::uint64_t off, std::uint32_t len, bool may_trim, bool fast) = 0;
    /// Describe [off, off+len) from its start as extents (state_hole | state_zero bits),
    /// at most out.size() of them, covering a prefix of the range.
    /// Returns: the number of extents written (>= 1), or -errno.
    virtual Task<IoResult> block_status(std::uint64_t off, std::uint32_t len,
                                        std::span<Extent> out) = 0;
};

/// Awaitable for one request to the layer below: `co_await call_lower(dev, make)` builds
/// the request with make() (a call of one of @dev's methods) and awaits it, yielding its
/// IoResult. When the frame cannot be allocated it waits for @dev's BioSet to free an
/// object and builds it again (the rule in the header comment), instead of the empty Task
/// that would throw std::bad_alloc. The request's frame lives in the awaiter, a temporary
/// of the co_await expression, so it is freed as soon as the result is taken: a caller
/// never holds two objects of the layer below.
/// Context: a coroutine on a reactor thread, holding no object of @dev's set.
template <class Make>
class LowerCall : BioSet::Waiter, RemoteTask {
public:
    LowerCall(BlockDevice& dev, Make make) noexcept(std::is_nothrow_move_constructible_v<Make>);

    bool await_ready() {
        t_ = make_();
        return false;
    }
    bool await_suspend(std::coroutine_handle<> parent) noexcept {
        parent_ = parent;
        reactor_ = Reactor::current();
        return start();
    }
    IoResult await_resume() { return Task<IoResult>::Awaiter{t_.handle()}.await_resume(); }

private:
    /// Returns: false when the request finished inline (the caller goes on), true when the
    /// parent is resumed later (by the request's end, or by on_run after a wait).
    bool start() noexcept {
        for (;;) {
            if (t_) {
                return Task<IoResult>::Awaiter{t_.handle()}.await_suspend(parent_);
            }
            if (set_->wait(*this)) {
                return true;
            }
            t_ = make_(); // an object came back meanwhile
        }
    }
    // wake() runs inside a free on any thread: it only posts (BioSet::wait's contract).
    static void on_wake(BioSet::Waiter* w) noexcept {
        auto* self = static_cast<LowerCall*>(w);
        self->reactor_->post_remote(*self);
    }
    static void on_run(RemoteTask* t) noexcept {
        auto* self = static_cast<LowerCall*>(t);
        self->t_ = self->make_();
        if (!self->start()) {
            self->parent_.resume();
        }
    }

    BioSet* set_;
    Make make_;
    Task<IoResult> t_;
    std::coroutine_handle<> parent_{};
    Reactor* reactor_ = nullptr;
};

template <class Make>
LowerCall<Make>::LowerCall(BlockDevice& dev,
                           Make make) noexcept(std::is_nothrow_move_constructible_v<Make>)
    : set_(&dev.bioset()), make_(std::move(make)) {
    BioSet::Waiter::wake = &on_wake;
    RemoteTask::run = &on_run;
}

/// See LowerCall. Usage:
///     IoResult r = co_await call_lower(dev, [&] { return dev.read(b, n, o); });
template <class Make>
LowerCall<Make> call_lower(BlockDevice& dev, Make make) {
    return LowerCall<Make>(dev, std::move(make));
}

/// A slabinfo-style table, one line per layer (top first): object size, objects in use,
/// requests, frames taken from the layer's BioSet, those per client request (the first
/// layer's requests), frames that came from elsewhere (must be 0), and the BioSet's
/// reserve hits, oversized allocations and failures.
/// Context: any thread; allocates.
std::string stats_table(std::span<Layer* const> layers);

} // namespace bioring::apps::nbd
