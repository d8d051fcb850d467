// SPDX-License-Identifier: MIT
// <bioring/bioring.hpp>: the whole public API of bioring in one include.
//
//   alloc/    BioSet (frame + request in one slab object), Bio, BufferPool and Buffer,
//             SlabRegistry, allocator statistics, the allocation-failure injector
//   runtime/  Task, spawn (bounded by a Semaphore), when_all, when_any, with_timeout,
//             sync_wait, Runtime, Reactor, sleep_for, IoResult, Result, the low-level
//             Operation/OpAwaiter request; Event, Semaphore, Mutex and Channel, the
//             coroutine synchronisation primitives (any reactor, FIFO, cancellable);
//             BufferRing (io_uring provided buffers, Socket::recv_select)
//   io/       DirectFile (O_DIRECT or buffered files on the ring, open_async, write flags),
//             file-system operations (fs::unlink, rename, mkdir, statx), linked requests
//             (link), the raw-SQE escape hatch, alignment probing, Socket, Listener and
//             SocketAddress (TCP and Unix stream sockets), the per-thread error message
//
// Headers under detail/ are internal: they are installed only because a public header
// includes them, and may change in any release.
#pragma once

#if __cplusplus < 202002L
#error "bioring needs C++20 or later: compile with -std=c++20 (or -std=c++23)"
#endif

#include <bioring/alloc/bio.hpp>
#include <bioring/alloc/bioset.hpp>
#include <bioring/alloc/buffer_pool.hpp>
#include <bioring/alloc/failure_injector.hpp>
#include <bioring/alloc/slab_registry.hpp>
#include <bioring/alloc/stats.hpp>
#include <bioring/io/alignment.hpp>
#include <bioring/io/direct_file.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/io/file_ops.hpp>
#include <bioring/io/io_options.hpp>
#include <bioring/io/link.hpp>
#include <bioring/io/listener.hpp>
#include <bioring/io/raw_sqe.hpp>
#include <bioring/io/socket.hpp>
#include <bioring/io/socket_address.hpp>
#include <bioring/io/write_flags.hpp>
#include <bioring/runtime/buffer_ring.hpp>
#include <bioring/runtime/channel.hpp>
#include <bioring/runtime/counters.hpp>
#include <bioring/runtime/event.hpp>
#include <bioring/runtime/expected.hpp>
#include <bioring/runtime/mutex.hpp>
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/semaphore.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/spawn.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/this_bio.hpp>
#include <bioring/runtime/when_all.hpp>
#include <bioring/runtime/when_any.hpp>
#include <bioring/runtime/with_timeout.hpp>
