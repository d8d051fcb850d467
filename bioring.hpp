// SPDX-License-Identifier: MIT
// <bioring/bioring.hpp>: the whole public API of bioring in one include.
//
//   alloc/    BioSet (frame + request in one slab object), Bio, BufferPool and Buffer,
//             SlabRegistry, allocator statistics, the allocation-failure injector
//   runtime/  Task, spawn, when_all, sync_wait, Runtime, Reactor, sleep_for, IoResult,
//             the low-level Operation/OpAwaiter request
//   io/       DirectFile (O_DIRECT or buffered files on the ring, open_async, write flags),
//             file-system operations (fs::unlink, rename, mkdir, statx), linked requests
//             (link), the raw-SQE escape hatch, alignment probing, the per-thread error message
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
#include <bioring/io/raw_sqe.hpp>
#include <bioring/io/write_flags.hpp>
#include <bioring/runtime/counters.hpp>
#include <bioring/runtime/op_awaiter.hpp>
#include <bioring/runtime/operation.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/result.hpp>
#include <bioring/runtime/runtime.hpp>
#include <bioring/runtime/sleep.hpp>
#include <bioring/runtime/spawn.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/this_bio.hpp>
#include <bioring/runtime/when_all.hpp>
