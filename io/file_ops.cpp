// SPDX-License-Identifier: MIT
// File-system operations on the ring: unlink, rmdir, mkdir, rename, statx (file_ops.hpp).
#include <bioring/io/file_ops.hpp>

#include <bioring/io/error_message.hpp>

#include <cerrno>

namespace bioring::fs {

PathOp::PathOp(const Operation& op, const char* name, const char* path, const char* path2,
               IoOptions&& o) noexcept
    : IoOp(std::move(o)), name_(name), path_(path), path2_(path2) {
    static_cast<Operation&>(*this) = op;
}

bool PathOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    fd = AT_FDCWD;
    if (code == OpCode::renameat) {
        len = static_cast<std::uint32_t>(AT_FDCWD);
    }
    complete = &PathOp::on_complete;
    return start();
}

void PathOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<PathOp*>(op);
    if (res < 0 && self->retry_transient(res, self->name_)) {
        return;
    }
    if (res < 0 && res != -ECANCELED) {
        if (self->path2_ != nullptr) {
            detail::set_error_message("bioring: %s %s -> %s: %s", self->name_, self->path_,
                                      self->path2_, detail::strerror_text(-res));
        } else {
            detail::set_error_message("bioring: %s %s: %s", self->name_, self->path_,
                                      detail::strerror_text(-res));
        }
    }
    self->finish(res);
}

namespace {

Operation path_op(OpCode code, const std::string& path) noexcept {
    Operation op;
    op.code = code;
    op.addr = const_cast<char*>(path.c_str()); // the kernel only reads the path
    return op;
}

} // namespace

PathOp unlink(const std::string& path, IoOptions o) noexcept {
    return PathOp(path_op(OpCode::unlinkat, path), "unlink", path.c_str(), nullptr, std::move(o));
}

PathOp rmdir(const std::string& path, IoOptions o) noexcept {
    Operation op = path_op(OpCode::unlinkat, path);
    op.mode = AT_REMOVEDIR;
    return PathOp(op, "rmdir", path.c_str(), nullptr, std::move(o));
}

PathOp mkdir(const std::string& path, unsigned mode, IoOptions o) noexcept {
    Operation op = path_op(OpCode::mkdirat, path);
    op.len = mode;
    return PathOp(op, "mkdir", path.c_str(), nullptr, std::move(o));
}

PathOp rename(const std::string& from, const std::string& to, RenameFlags flags,
              IoOptions o) noexcept {
    Operation op = path_op(OpCode::renameat, from);
    op.length = reinterpret_cast<std::uintptr_t>(to.c_str());
    op.mode = static_cast<int>(flags);
    return PathOp(op, "rename", from.c_str(), to.c_str(), std::move(o));
}

PathOp statx(const std::string& path, struct ::statx& out, unsigned mask, int flags,
             IoOptions o) noexcept {
    Operation op = path_op(OpCode::statx, path);
    op.len = mask;
    op.mode = flags;
    op.length = reinterpret_cast<std::uintptr_t>(&out);
    return PathOp(op, "statx", path.c_str(), nullptr, std::move(o));
}

} // namespace bioring::fs
