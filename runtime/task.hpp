// SPDX-License-Identifier: MIT
// Task<T>: a lazy, move-only coroutine whose frame lives in the front pad of a bioset object.
//
// Awaiting (a bool-returning await_suspend): GCC 12 overflows the stack with
// symmetric transfer at -O0/-O1 and under ASan on long chains of synchronously completing
// awaits, so the awaiter resumes the child inline and returns false when the child has
// already finished; only a child that really suspended is resumed later, and its final
// awaiter then hands control to the parent.
//
// Who resumes the parent is decided with one thread-local word and no atomic: around the
// inline resume() the awaiter points tl_context.inline_child at the child's promise (saving
// and restoring the outer value, so nested awaits stack). A final awaiter that finds its own
// promise there runs on the parent's thread inside that resume(): it clears the word and
// returns to it, and await_suspend sees the cleared word and returns false. Any other final
// awaiter — the child finished later, from the reactor loop, or on another thread after
// switch_to() — finds something else there (each thread has its own word, and a thread's
// word only ever names promises whose inline resume() is on that thread's stack) and
// resumes the parent itself; await_suspend then still finds its promise in the word and
// returns true. So neither side writes anything the other reads concurrently: the child's
// continuation is written before the resume(), and a child that moves to another thread
// does so through a post that orders that write before its final awaiter. After resume()
// await_suspend touches neither frame (the parent may already be running elsewhere).
// Inside the final awaiter nothing touches the frame after the continuation is handed
// over: the parent may destroy it at once.
//
// Frames: the promise's operator new takes the frame from a BioSet — the coroutine's
// first argument when it is a BioSet& (for a member coroutine or a lambda: the first after
// the object), else the calling thread's default bioset (the
// running Reactor's), else the heap. The frame is right-aligned against the Bio
// (frame = bio - round_up(size, 64)), so operator delete(p, size) finds the Bio at
// p + round_up(size, 64) with no extra pointer; a heap frame has the same layout with a
// Bio whose set is nullptr. operator new hands the Bio to the promise constructor, which
// runs next on the same thread, through a thread_local.
#pragma once

#include <bioring/alloc/bio.hpp>
#include <bioring/alloc/bioset.hpp>
#include <bioring/runtime/counters.hpp>
#include <bioring/runtime/detail/thread_context.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

// HACK(gcc-12): unoptimised GCC 12 (seen at -O0 with ASan) inlines the promise's operator
// new/delete into the coroutine and flags the pair -Wmismatched-new-delete, because operator
// new takes the coroutine's arguments (placement form) while the frame is released through
// the sized operator delete — the pairing the standard prescribes for coroutine frames. The
// warning is issued where the coroutine is defined, in the including file, so a push/pop
// around the promise cannot scope it; it is limited to the compilers and flags that raise
// the false positive (GCC 12 without optimisation) and does nothing elsewhere. Remove when
// GCC 12 is no longer supported.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12 && !defined(__OPTIMIZE__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace bioring {

template <class T = void>
class Task;

/// The calling thread's default bioset: the one of the Reactor running on this thread.
/// Context: any thread. Returns: nullptr when no Reactor runs on this thread.
BioSet* default_bioset() noexcept;

/// Count of exceptions that escaped detached (spawned) tasks, process-wide.
std::uint64_t detached_exceptions() noexcept;

namespace detail {

inline constexpr std::size_t round64(std::size_t n) noexcept {
    return (n + 63) & ~std::size_t{63};
}

/// frame_alloc for a thread without a bioset: @f (a multiple of 64) frame bytes and a Bio
/// behind them, from the heap, the Bio's set nullptr. Returns: the frame, or nullptr.
void* frame_alloc_heap(std::size_t f) noexcept;
/// frame_free of a heap frame (frame_alloc_heap).
void frame_free_heap(void* frame) noexcept;

/// frame_alloc from @bs when its lock-free path cannot serve (BioSet::alloc_cached()
/// returned nullptr): BioSet::alloc(), with its refill, reserve and oversized paths; counts
/// a reserve hit. Returns: the frame, or nullptr.
void* frame_alloc_slow(BioSet& bs, std::size_t f) noexcept;

/// Allocate a frame of @size bytes in front of a Bio of @bs (heap when @bs is null), and
/// hand the Bio to the promise constructor (tl_context.new_bio). Inline, as
/// BioSet::alloc_cached() is: with a bioset this is a pop from the thread's magazine and the
/// Bio's set-up, with no call and no atomic read-modify-write, on every request; everything
/// else (refill, reserve, oversized, failure) is out of line in frame_alloc_slow().
/// Context: the thread that will start the coroutine.
/// Returns: the frame, or nullptr (the Task comes back empty).
inline void* frame_alloc(BioSet* bs, std::size_t size) noexcept {
    const std::size_t f = round64(size);
    if (bs == nullptr) [[unlikely]] {
        return frame_alloc_heap(f);
    }
    Bio* bio = bs->alloc_cached(f);
    if (bio == nullptr) [[unlikely]] {
        return frame_alloc_slow(*bs, f);
    }
    ThreadContext& tc = tl_context;
    tc.new_bio = bio;
    if (ReactorCounters* c = tc.counters) {
        ++c->requests_allocated; // a magazine object: never the reserve's
    }
    char* frame = reinterpret_cast<char*>(bio) - f;
    bio->frame = frame;
    return frame;
}

/// Free a frame allocated by frame_alloc with the same @size (inline for the same reason).
/// Context: any thread (BioSet::free()).
inline void frame_free(void* frame, std::size_t size) noexcept {
    Bio* bio = reinterpret_cast<Bio*>(static_cast<char*>(frame) + round64(size));
    if (BioSet* set = bio->set) [[likely]] {
        set->free(bio); // bio->frame is left stale: alloc() resets the whole Bio
        return;
    }
    frame_free_heap(frame);
}
/// Report (stderr) and count an exception that escaped a detached task.
void report_detached_exception(std::exception_ptr e) noexcept;

/// Called by a task's final awaiter instead of resuming an awaiting coroutine (when_all
/// latches, sync_wait, run_on_all). For a detached task it runs after the frame is freed.
struct DoneHook {
    std::coroutine_handle<> (*fn)(DoneHook* self) noexcept = nullptr;
};

/// The hook of a detached task started without one: a detached task always has a hook, so
/// that its final awaiter tells "awaited, no hook" (the common case) from everything else
/// with one test.
inline constinit DoneHook detached_no_hook{
    [](DoneHook*) noexcept -> std::coroutine_handle<> { return std::noop_coroutine(); }};

class PromiseBase {
public:
    // A leading BioSet& picks the bioset; otherwise the thread's default one.
    template <class... A>
    static void* operator new(std::size_t size, BioSet& bs, A&...) noexcept {
        return frame_alloc(&bs, size);
    }
    // A member coroutine or a lambda gets its object first: a BioSet& right after it
    // counts as leading too.
    template <class C, class... A>
    requires(std::is_class_v<C> && !std::is_same_v<std::remove_cv_t<C>, BioSet>) static void*
    operator new(std::size_t size, C&, BioSet& bs, A&...) noexcept {
        return frame_alloc(&bs, size);
    }
    template <class... A>
    static void* operator new(std::size_t size, A&...) noexcept {
        return frame_alloc(tl_context.bioset, size);
    }
    static void operator delete(void* frame, std::size_t size) noexcept { frame_free(frame, size); }

    // frame_alloc wrote new_bio for this frame (nullptr for a heap frame) just before.
    PromiseBase() noexcept : bio_(tl_context.new_bio) {}
    PromiseBase(const PromiseBase&) = delete;
    PromiseBase& operator=(const PromiseBase&) = delete;

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct FinalAwaiter {
        bool await_ready() const noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            PromiseBase& p = h.promise();
            if (DoneHook* hook = p.hook_) [[unlikely]] { // a latch, or a detached task
                if (p.detached_) {
                    note_detached(-1);
                    if (p.exception_) {
                        report_detached_exception(p.exception_);
                    }
                    h.destroy();
                }
                return hook->fn(hook);
            }
            // Paired with Task's awaiter (file comment): inside its resume() on this thread,
            // say "finished" and return to it; otherwise the parent is suspended: resume it.
            if (tl_context.inline_child == static_cast<void*>(&p)) {
                tl_context.inline_child = nullptr;
                return std::noop_coroutine();
            }
            return p.continuation_;
        }
        void await_resume() const noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }

    /// The Bio behind this frame; nullptr for a heap frame.
    Bio* bio() const noexcept { return bio_; }

    // Internal wiring (Task awaiter, spawn, when_all, sync_wait). A task started by hand
    // (handle().resume(), never awaited) has no parent: its final awaiter resumes the no-op.
    std::coroutine_handle<> continuation_ = std::noop_coroutine();
    DoneHook* hook_ = nullptr; ///< never nullptr for a detached task (detached_no_hook)
    std::exception_ptr exception_{};
    Bio* bio_ = nullptr;
    bool detached_ = false;
};

/// The result's storage. A trivially destructible T (IoResult, integers) needs no "was it
/// set" flag: nothing reads it before co_return wrote it (take() rethrows first when the task
/// ended with an exception), and nothing has to destroy it, so neither the ramp nor
/// co_return writes a flag. Any other T keeps one, for its destructor.
template <class T, bool Trivial = std::is_trivially_destructible_v<T>>
class ResultSlot {
public:
    ResultSlot() noexcept {}
    ResultSlot(const ResultSlot&) = delete;
    ResultSlot& operator=(const ResultSlot&) = delete;
    template <class U>
    void set(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        ::new (static_cast<void*>(&value_)) T(std::forward<U>(v));
    }
    T& get() noexcept { return value_; }

private:
    union {
        T value_;
    };
};

template <class T>
class ResultSlot<T, false> {
public:
    ResultSlot() noexcept {}
    ResultSlot(const ResultSlot&) = delete;
    ResultSlot& operator=(const ResultSlot&) = delete;
    ~ResultSlot() {
        if (set_) {
            value_.~T();
        }
    }
    template <class U>
    void set(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        ::new (static_cast<void*>(&value_)) T(std::forward<U>(v));
        set_ = true;
    }
    T& get() noexcept { return value_; }

private:
    union {
        T value_;
    };
    bool set_ = false;
};

template <class T>
class Promise final : public PromiseBase {
public:
    Task<T> get_return_object() noexcept;
    static Task<T> get_return_object_on_allocation_failure() noexcept;
    template <class U>
    void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        value_.set(std::forward<U>(v));
    }
    /// Context: once the task has finished (it ended with co_return or an exception).
    T take() {
        if (exception_) {
            std::rethrow_exception(exception_);
        }
        return std::move(value_.get());
    }

private:
    ResultSlot<T> value_;
};

template <>
class Promise<void> final : public PromiseBase {
public:
    Task<void> get_return_object() noexcept;
    static Task<void> get_return_object_on_allocation_failure() noexcept;
    void return_void() noexcept {}
    void take() {
        if (exception_) {
            std::rethrow_exception(exception_);
        }
    }
};

} // namespace detail

/// A lazy coroutine producing T. Awaiting it starts it; `co_await task` yields T (moved
/// out) or rethrows the exception that ended it. Move-only; destroying a Task destroys its
/// frame (a started task must have finished).
template <class T>
class [[nodiscard]] Task {
    static_assert(!std::is_reference_v<T>, "Task<T&> is not supported");

public:
    using promise_type = detail::Promise<T>;
    using handle_type = std::coroutine_handle<promise_type>;

    Task() noexcept = default;
    explicit Task(handle_type h) noexcept : h_(h) {}
    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    ~Task() { reset(); }

    /// Returns: false when the frame could not be allocated (the bioset's pool and the
    /// backing allocator were exhausted); such a task throws std::bad_alloc when awaited.
    explicit operator bool() const noexcept { return static_cast<bool>(h_); }

    struct Awaiter {
        handle_type h;
        // An empty task throws here, before anything suspends, so that await_resume, which
        // runs after the suspension, has nothing left to test.
        bool await_ready() const {
            if (!h) [[unlikely]] {
                throw std::bad_alloc();
            }
            return false;
        }
        bool await_suspend(std::coroutine_handle<> parent) noexcept {
            const handle_type child = h; // *this is in the parent's frame: not read after resume()
            void* const p = &child.promise();
            child.promise().continuation_ = parent;
            detail::ThreadContext& tc = detail::tl_context; // this thread's, before and after
            void* const outer = tc.inline_child;
            tc.inline_child = p;
            child.resume();
            // Paired with FinalAwaiter (file comment): cleared = finished inline, go on.
            const bool suspended = tc.inline_child == p;
            tc.inline_child = outer;
            return suspended;
        }
        T await_resume() { return h.promise().take(); }
    };
    Awaiter operator co_await() const& noexcept { return Awaiter{h_}; }
    Awaiter operator co_await() const&& noexcept { return Awaiter{h_}; }

    /// Internal: the coroutine handle (still owned by the Task).
    handle_type handle() const noexcept { return h_; }
    /// Internal: give up ownership of the frame.
    handle_type release() noexcept { return std::exchange(h_, {}); }

private:
    void reset() noexcept {
        if (h_) {
            h_.destroy();
            h_ = {};
        }
    }
    handle_type h_{};
};

namespace detail {
template <class T>
inline Task<T> Promise<T>::get_return_object() noexcept {
    return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
template <class T>
inline Task<T> Promise<T>::get_return_object_on_allocation_failure() noexcept {
    return Task<T>();
}
inline Task<void> Promise<void>::get_return_object() noexcept {
    return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object_on_allocation_failure() noexcept {
    return Task<void>();
}

/// Start @t detached: it frees its own frame when it ends; @after_free (if any) runs then.
/// Context: the thread that should run the task (normally a reactor thread).
inline void start_detached(Task<void> t, DoneHook* after_free = nullptr) noexcept {
    auto h = t.release();
    note_detached(+1);
    h.promise().detached_ = true;
    h.promise().hook_ = after_free != nullptr ? after_free : &detached_no_hook;
    h.resume();
}
} // namespace detail

/// Awaiting it yields the running Task's Bio (runtime/this_bio.hpp). The awaiter learns the
/// promise from the handle and does not really suspend (await_suspend returns false).
struct ThisBioTag {
    struct Awaiter {
        Bio* bio = nullptr;
        bool await_ready() const noexcept { return false; }
        template <class P>
        requires std::is_base_of_v<detail::PromiseBase, P>
        bool await_suspend(std::coroutine_handle<P> h) noexcept {
            bio = h.promise().bio();
            return false;
        }
        Bio* await_resume() const noexcept { return bio; }
    };
    Awaiter operator co_await() const noexcept { return {}; }
};
inline constexpr ThisBioTag this_bio{};

} // namespace bioring
