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
#include <system_error>
#include <utility>

namespace bioring {
namespace {

std::string describe_flags(const OpenOptions& o)
{
    std::string s = o.write ? "O_RDWR" : "O_RDONLY";
    if (o.direct) {
        s += "|O_DIRECT";
    }
    if (o.dsync) {
        s += "|O_DSYNC";
    }
    if (o.create) {
        s += "|O_CREAT";
    }
    if (o.truncate) {
        s += "|O_TRUNC";
    }
    if (o.exclusive) {
        s += "|O_EXCL";
    }
    return s;
}

[[noreturn]] void throw_open_error(int err, const std::string& path, const OpenOptions& o,
                                   const char* why)
{
    std::string what = "bioring: open " + path + " (" + describe_flags(o) + ")";
    if (why != nullptr) {
        what += ": ";
        what += why;
    }
    throw std::system_error(err, std::system_category(), what);
}

} // namespace

DirectFile DirectFile::open(const std::string& path, const OpenOptions& o)
{
    if (o.truncate && !o.write) {
        throw_open_error(EINVAL, path, o, "truncate requires write");
    }
    int flags = O_CLOEXEC | (o.write ? O_RDWR : O_RDONLY);
    flags |= o.direct ? O_DIRECT : 0;
    flags |= o.dsync ? O_DSYNC : 0;
    flags |= o.create ? O_CREAT : 0;
    flags |= o.truncate ? O_TRUNC : 0;
    flags |= o.exclusive ? O_EXCL : 0;
    DirectFile f;
    f.state_.path = path;
    f.state_.fd = ::open(path.c_str(), flags, static_cast<mode_t>(o.mode));
    if (f.state_.fd < 0) {
        const int err = errno;
        throw_open_error(err, path, o,
                         err == EINVAL && o.direct ? "the filesystem refuses O_DIRECT" : nullptr);
    }
    struct stat st{};
    if (::fstat(f.state_.fd, &st) != 0) {
        throw_open_error(errno, path, o, "fstat failed");
    }
    if (S_ISDIR(st.st_mode)) {
        throw_open_error(EISDIR, path, o, nullptr);
    }
    f.state_.direct = o.direct;
    f.state_.block_device = S_ISBLK(st.st_mode);
    const DioAlignment a = detail::probe_alignment(f.state_.fd, f.state_.block_device);
    f.state_.memory_align = a.memory;
    f.state_.offset_align = a.offset;
    f.alignment_source_ = a.source;
    return f;
}

DirectFile::DirectFile(DirectFile&& other) noexcept
    : state_(std::move(other.state_)), alignment_source_(other.alignment_source_)
{
    other.state_.fd = -1;
    other.state_.fixed_index = -1;
    other.state_.fixed_reactor = 0;
}

DirectFile& DirectFile::operator=(DirectFile&& other) noexcept
{
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

DirectFile::~DirectFile()
{
    close_now();
}

void DirectFile::close_now() noexcept
{
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

std::uint64_t DirectFile::size() const
{
    if (state_.block_device) {
        std::uint64_t bytes = 0;
        if (::ioctl(state_.fd, BLKGETSIZE64, &bytes) != 0) {
            throw std::system_error(errno, std::system_category(),
                                    "bioring: BLKGETSIZE64 on " + state_.path);
        }
        return bytes;
    }
    struct stat st{};
    if (::fstat(state_.fd, &st) != 0) {
        throw std::system_error(errno, std::system_category(), "bioring: fstat " + state_.path);
    }
    return static_cast<std::uint64_t>(st.st_size);
}

bool DirectFile::register_fixed() noexcept
{
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

void DirectFile::unregister_fixed() noexcept
{
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

bool DirectFile::is_fixed() const noexcept
{
    return state_.fixed_on(Reactor::current());
}

bool DirectFile::is_aligned(const void* buf, std::size_t len, std::uint64_t offset) const noexcept
{
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
