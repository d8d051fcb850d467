// SPDX-License-Identifier: MIT
// sync_wait: drive a Task from ordinary code (main, a test) on the calling thread's
// reactor, creating a reactor for the call when the thread has none. The task runs inside
// a small detached driver whose frame is freed before the caller is told it is done, so
// the caller may destroy the reactor at once.
#pragma once

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/task.hpp>

#include <atomic>
#include <exception>
#include <new>
#include <optional>
#include <stdexcept>
#include <type_traits>

namespace bioring {

namespace detail {

template <class T>
struct SyncSlot {
    std::optional<T> value;
    std::exception_ptr error;
    T take() {
        if (error) {
            std::rethrow_exception(error);
        }
        return std::move(*value);
    }
};
template <>
struct SyncSlot<void> {
    std::exception_ptr error;
    void take() {
        if (error) {
            std::rethrow_exception(error);
        }
    }
};

/// Awaits @t and stores its outcome in @slot (the driver of sync_wait and run_on_all).
template <class T>
Task<void> drive(Task<T> t, SyncSlot<T>* slot) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await t;
        } else {
            slot->value.emplace(co_await t);
        }
    } catch (...) {
        slot->error = std::current_exception();
    }
}

/// Runs after the driver's frame is freed: marks done on the waiting reactor's thread.
struct SyncHook : DoneHook, RemoteTask {
    Reactor* reactor = nullptr;
    bool done = false; // owner thread only

    SyncHook() noexcept {
        DoneHook::fn = &on_done;
        RemoteTask::run = &on_remote;
    }
    static std::coroutine_handle<> on_done(DoneHook* h) noexcept {
        auto* self = static_cast<SyncHook*>(h);
        if (Reactor::current() == self->reactor) {
            self->done = true;
        } else {
            self->reactor->post_remote(*self); // finished on another reactor (switch_to)
        }
        return std::noop_coroutine();
    }
    static void on_remote(RemoteTask* t) noexcept { static_cast<SyncHook*>(t)->done = true; }
};

} // namespace detail

/// Run @t to completion on this thread's reactor (one is created for the call if the
/// thread has none) and return its value or rethrow its exception.
/// Context: a thread whose reactor (if any) is not running its loop: main, a test, a plain
/// thread. Called from inside a coroutine, a completion or a remote task on a reactor
/// thread it throws std::logic_error instead of nesting the loop (co_await the task there).
/// Returns: the task's value; throws what it threw, std::bad_alloc for an empty task.
template <class T>
T sync_wait(Task<T> t) {
    std::optional<Reactor> own;
    Reactor* r = Reactor::current();
    if (r != nullptr && r->in_loop()) {
        throw std::logic_error("bioring::sync_wait called while this thread's reactor is "
                               "running (inside a coroutine or a completion): co_await the "
                               "task instead");
    }
    if (r == nullptr) {
        own.emplace();
        r = &*own;
    }
    if (!t) {
        throw std::bad_alloc();
    }
    detail::SyncSlot<T> slot;
    detail::SyncHook hook;
    hook.reactor = r;
    Task<void> driver = detail::drive(std::move(t), &slot);
    if (!driver) {
        throw std::bad_alloc();
    }
    {
        Reactor::LoopScope in_loop(*r); // the task's first steps run inside start_detached
        detail::start_detached(std::move(driver), &hook);
        r->run_until([&] { return hook.done; });
    }
    return slot.take();
}

} // namespace bioring
