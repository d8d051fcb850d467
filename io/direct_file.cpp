// SPDX-License-Identifier: MIT
// DirectFile: open, size, fixed-file registration and synchronous teardown.
#include <bioring/io/direct_file.hpp>

#include <bioring/runtime/reactor.hpp>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <system_error>
#include <utility>

namespace bioring {
namespace {

// The O_* flags as "O_RDWR|O_DIRECT|..." into @out (no allocation: used on error paths of
// noexcept awaiters).
void describe_flags(int flags, char (&out)[64]) noexcept {
    std::snprintf(out, sizeof out, "%s%s%s%s%s%s",
                  (flags & O_ACCMODE) == O_RDWR ? "O_RDWR" : "O_RDONLY",
                  (flags & O_DIRECT) ? "|O_DIRECT" : "", (flags & O_DSYNC) ? "|O_DSYNC" : "",
                  (flags & O_CREAT) ? "|O_CREAT" : "", (flags & O_TRUNC) ? "|O_TRUNC" : "",
                  (flags & O_EXCL) ? "|O_EXCL" : "");
}

std::string open_error_text(const std::string& path, int flags, const char* why) {
    char fl[64];
    describe_flags(flags, fl);
    std::string what = "bioring: open " + path + " (" + fl + ")";
    if (why != nullptr) {
        what += ": ";
        what += why;
    }
    return what;
}

/// The per-thread message for a failed open_async.
void set_open_message(const std::string& path, int flags, const char* why) noexcept {
    char fl[64];
    describe_flags(flags, fl);
    detail::set_error_message("bioring: open %s (%s): %s", path.c_str(), fl, why);
}

[[noreturn]] void throw_open_error(int err, const std::string& path, int flags, const char* why) {
    throw std::system_error(err, std::system_category(), open_error_text(path, flags, why));
}

} // namespace

namespace detail {

int open_flags(const OpenOptions& o) noexcept {
    int flags = O_CLOEXEC | (o.write ? O_RDWR : O_RDONLY);
    flags |= o.direct ? O_DIRECT : 0;
    flags |= o.dsync ? O_DSYNC : 0;
    flags |= o.create ? O_CREAT : 0;
    flags |= o.truncate ? O_TRUNC : 0;
    flags |= o.exclusive ? O_EXCL : 0;
    return flags;
}

} // namespace detail

int DirectFile::adopt(DirectFile& f, int fd, bool direct, const char*& why) noexcept {
    why = nullptr;
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        why = "fstat failed";
        return errno;
    }
    if (S_ISDIR(st.st_mode)) {
        return EISDIR;
    }
    f.state_.fd = fd;
    f.state_.direct = direct;
    f.state_.block_device = S_ISBLK(st.st_mode);
    const DioAlignment a = detail::probe_alignment(fd, f.state_.block_device);
    f.state_.memory_align = a.memory;
    f.state_.offset_align = a.offset;
    f.alignment_source_ = a.source;
    return 0;
}

DirectFile DirectFile::open(const std::string& path, const OpenOptions& o) {
    const int flags = detail::open_flags(o);
    if (o.truncate && !o.write) {
        throw_open_error(EINVAL, path, flags, "truncate requires write");
    }
    DirectFile f;
    f.state_.path = path;
    const int fd = ::open(path.c_str(), flags, static_cast<mode_t>(o.mode));
    if (fd < 0) {
        const int err = errno;
        throw_open_error(err, path, flags,
                         err == EINVAL && o.direct ? "the filesystem refuses O_DIRECT" : nullptr);
    }
    const char* why = nullptr;
    if (const int err = adopt(f, fd, o.direct, why); err != 0) {
        ::close(fd);
        throw_open_error(err, path, flags, why);
    }
    return f;
}

OpenOp DirectFile::open_async(std::string path, const OpenOptions& o, IoOptions io) {
    return OpenOp(std::move(path), detail::open_flags(o), o.mode, o.direct, std::move(io));
}

bool OpenOp::await_ready() noexcept {
    if ((flags_ & O_TRUNC) != 0 && (flags_ & O_ACCMODE) == O_RDONLY) {
        set_open_message(path_, flags_, "truncate requires write");
        return ready_with(-EINVAL);
    }
    return false;
}

bool OpenOp::await_suspend(std::coroutine_handle<> waiter) noexcept {
    if (!attach(waiter)) {
        return false;
    }
    code = OpCode::openat;
    fd = AT_FDCWD;
    fixed_file = false;
    addr = const_cast<char*>(path_.c_str()); // the kernel only reads the path
    mode = flags_;
    len = perms_;
    complete = &OpenOp::on_complete;
    return start();
}

void OpenOp::on_complete(Operation* op, int res) noexcept {
    auto* self = static_cast<OpenOp*>(op);
    if (res < 0 && self->retry_transient(res, "open")) {
        return;
    }
    self->finish(res);
}

OpenResult OpenOp::await_resume() noexcept {
    const int res = IoOp::await_resume().res;
    if (res < 0) {
        const int err = -res;
        if (err != ECANCELED && err != ENXIO) {
            const bool trunc_ro = (flags_ & O_TRUNC) != 0 && (flags_ & O_ACCMODE) == O_RDONLY;
            const char* why = err != EINVAL ? detail::strerror_text(err)
                              : trunc_ro    ? "truncate requires write"
                              : direct_     ? "the filesystem refuses O_DIRECT"
                                            : detail::strerror_text(err);
            set_open_message(path_, flags_, why);
        }
        return OpenResult{DirectFile(), res};
    }
    try {
        DirectFile f;
        f.state_.path = path_;
        const char* why = nullptr;
        if (const int err = DirectFile::adopt(f, res, direct_, why); err != 0) {
            ::close(res);
            set_open_message(path_, flags_, why != nullptr ? why : detail::strerror_text(err));
            return OpenResult{DirectFile(), -err};
        }
        return OpenResult{std::move(f), 0};
    } catch (const std::bad_alloc&) {
        ::close(res);
        set_open_message(path_, flags_, "out of memory");
        return OpenResult{DirectFile(), -ENOMEM};
    }
}

LinkStep DirectFile::step(Operation op, const char* name, std::uint64_t expect,
                          int error) const noexcept {
    op.fd = state_.fd;
    if (state_.fd < 0) {
        detail::set_error_message("bioring: linked %s on a closed file (%s)", name,
                                  state_.path.c_str());
        error = -EBADF;
    }
    return LinkStep(op, &state_, name, expect, error);
}

LinkStep DirectFile::write_step(const void* buf, std::size_t len, std::uint64_t offset,
                                WriteFlags flags) const noexcept {
    const auto fl = static_cast<std::uint32_t>(flags);
    Operation op;
    op.code = fl != 0 ? OpCode::write_flags : OpCode::write;
    op.addr = const_cast<void*>(buf); // the kernel only reads a write's buffer
    op.len = static_cast<std::uint32_t>(len);
    op.offset = offset;
    op.mode = static_cast<int>(fl);
    int error = 0;
    if (state_.fd >= 0) {
        if ((fl & ~write_flags_known) != 0) {
            detail::set_error_message("bioring: linked write with unknown write flags 0x%x "
                                      "(file %s)",
                                      fl & ~write_flags_known, state_.path.c_str());
            error = -EINVAL;
        } else {
            error = detail::check_transfer(state_, "linked write", buf, len, offset);
        }
    }
    return step(op, "write", len, error);
}

LinkStep DirectFile::read_step(void* buf, std::size_t len, std::uint64_t offset) const noexcept {
    Operation op;
    op.code = OpCode::read;
    op.addr = buf;
    op.len = static_cast<std::uint32_t>(len);
    op.offset = offset;
    const int error =
        state_.fd >= 0 ? detail::check_transfer(state_, "linked read", buf, len, offset) : 0;
    return step(op, "read", len, error);
}

LinkStep DirectFile::fsync_step() const noexcept {
    Operation op;
    op.code = OpCode::fsync;
    return step(op, "fsync", 0, 0);
}

LinkStep DirectFile::fdatasync_step() const noexcept {
    Operation op;
    op.code = OpCode::fdatasync;
    return step(op, "fdatasync", 0, 0);
}

LinkStep DirectFile::ftruncate_step(std::uint64_t size) const noexcept {
    Operation op;
    op.code = OpCode::ftruncate;
    op.offset = size;
    return step(op, "ftruncate", 0, 0);
}

LinkStep DirectFile::sync_file_range_step(std::uint64_t offset, std::uint32_t nbytes,
                                          unsigned flags) const noexcept {
    Operation op;
    op.code = OpCode::sync_file_range;
    op.offset = offset;
    op.len = nbytes;
    op.mode = static_cast<int>(flags);
    return step(op, "sync_file_range", 0, 0);
}

LinkStep DirectFile::fallocate_step(int mode, std::uint64_t offset,
                                    std::uint64_t length) const noexcept {
    Operation op;
    op.code = OpCode::fallocate;
    op.mode = mode;
    op.offset = offset;
    op.length = length;
    return step(op, "fallocate", 0, 0);
}

DirectFile::DirectFile(DirectFile&& other) noexcept
    : state_(std::move(other.state_)), alignment_source_(other.alignment_source_) {
    other.state_.fd = -1;
    other.state_.fixed_index = -1;
    other.state_.fixed_reactor = 0;
}

DirectFile& DirectFile::operator=(DirectFile&& other) noexcept {
    if (this != &other) {
        close_now();
        state_ = std::move(other.state_);
        alignment_source_ = other.alignment_source_;
        other.state_.fd = -1;
        other.state_.fixed_index = -1;
        other.state_.fixed_reactor = 0;
    }
    return *this;
}

DirectFile::~DirectFile() {
    close_now();
}

void DirectFile::close_now() noexcept {
    if (state_.fd < 0) {
        return;
    }
    unregister_fixed();
    // Not retried on EINTR: Linux has released the descriptor either way.
    ::close(state_.fd);
    state_.fd = -1;
    state_.fixed_index = -1;
    state_.fixed_reactor = 0;
}

std::uint64_t DirectFile::size() const {
    if (state_.block_device) {
        std::uint64_t bytes = 0;
        if (::ioctl(state_.fd, BLKGETSIZE64, &bytes) != 0) {
            throw std::system_error(errno, std::system_category(),
                                    "bioring: BLKGETSIZE64 on " + state_.path);
        }
        return bytes;
    }
    struct stat st {};
    if (::fstat(state_.fd, &st) != 0) {
        throw std::system_error(errno, std::system_category(), "bioring: fstat " + state_.path);
    }
    return static_cast<std::uint64_t>(st.st_size);
}

bool DirectFile::register_fixed() noexcept {
    Reactor* const here = Reactor::current();
    if (here == nullptr || state_.fd < 0) {
        return false;
    }
    if (state_.fixed_index >= 0) {
        return state_.fixed_on(here);
    }
    const int index = here->register_file(state_.fd);
    if (index < 0) {
        return false;
    }
    state_.fixed_index = index;
    state_.fixed_reactor = here->id();
    return true;
}

void DirectFile::unregister_fixed() noexcept {
    if (state_.fixed_index < 0) {
        return;
    }
    Reactor* const here = Reactor::current();
    if (state_.fixed_on(here)) {
        here->unregister_file(state_.fixed_index);
    }
    // Off that reactor's thread the ring's table cannot be touched; the registration
    // holds its own reference to the file and goes away with the ring.
    state_.fixed_index = -1;
    state_.fixed_reactor = 0;
}

bool DirectFile::is_fixed() const noexcept {
    return state_.fixed_on(Reactor::current());
}

bool DirectFile::is_aligned(const void* buf, std::size_t len, std::uint64_t offset) const noexcept {
    if (len > detail::max_transfer) {
        return false;
    }
    if (!state_.direct) {
        return true;
    }
    return reinterpret_cast<std::uintptr_t>(buf) % state_.memory_align == 0 &&
           offset % state_.offset_align == 0 && len % state_.offset_align == 0;
}

} // namespace bioring
