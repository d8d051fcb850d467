// SPDX-License-Identifier: MIT
// File operations on the ring: open_async, fs::unlink/rmdir/mkdir/rename/statx, ftruncate
// and sync_file_range, on tmpfs and on the ext4 build tree, O_DIRECT and buffered, with
// their failures (ENOENT, EEXIST, ENOTDIR, EXDEV, EINVAL, EISDIR, EBADF) and the
// per-thread message. Passes on both backends (BIORING_BACKEND=asio).
#include <bioring/io/direct_file.hpp>
#include <bioring/io/error_message.hpp>
#include <bioring/io/file_ops.hpp>

#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include "tests/io/io_support.hpp"
#include "tests/io/tmp_file.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

using namespace bioring;
using namespace bioring::test;

namespace {

bool message_has(const char* what) {
    return std::strstr(last_error_message(), what) != nullptr;
}

bool exists(const std::string& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
}

std::uint64_t file_size(const std::string& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.st_size);
}

// A directory removed (with its content) at scope end.
struct TempDir {
    explicit TempDir(const std::string& where = test_dir()) : p(where, "dir") {
        REQUIRE(::mkdir(p.c_str(), 0755) == 0);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(p.str(), ec);
    }
    std::string sub(const char* name) const { return p.str() + "/" + name; }
    TempPath p;
};

void touch(const std::string& p) {
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);
}

} // namespace

TEST_SUITE("io") {

    TEST_CASE("open_async creates, writes and reads an O_DIRECT and a buffered file") {
        for (bool direct : {true, false}) {
            CAPTURE(direct);
            TempPath p;
            sync_wait([&]() -> Task<void> {
                OpenOptions o = rw_create();
                o.direct = direct;
                OpenResult f = co_await DirectFile::open_async(p.str(), o);
                if (!f && direct && f.res == -EINVAL) {
                    skip(std::string("O_DIRECT refused: ") + last_error_message());
                    co_return;
                }
                REQUIRE(f.ok());
                CHECK(f.file.is_open());
                CHECK(f.file.is_direct() == direct);
                CHECK(f.file.path() == p.str());
                CHECK(f.file.offset_alignment() >= 512);
                AlignedBuffer w(8192), r(8192);
                fill_pattern(w.data, 8192, 0, 3);
                CHECK((co_await f.file.write(w.data, 8192, 0)).res == 8192);
                CHECK((co_await f.file.read(r.data, 8192, 0)).res == 8192);
                CHECK(first_mismatch(r.data, 8192, 0, 3) == -1);
                CHECK((co_await f.file.close()).res == 0);
            }());
        }
    }

    TEST_CASE(
        "open_async reports ENOENT, EEXIST, EISDIR and truncate without write with a message") {
        TempPath p;
        TempDir d;
        sync_wait([&]() -> Task<void> {
            OpenOptions ro;
            ro.direct = false;
            OpenResult missing = co_await DirectFile::open_async(p.str(), ro);
            REQUIRE(!missing);
            CHECK(missing.res == -ENOENT);
            CHECK(!missing.file.is_open());
            CHECK(message_has(p.c_str()));
            CHECK(message_has("O_RDONLY"));

            touch(p.str());
            OpenOptions excl = rw_create();
            excl.truncate = false;
            excl.exclusive = true;
            excl.direct = false;
            OpenResult again = co_await DirectFile::open_async(p.str(), excl);
            REQUIRE(!again);
            CHECK(again.res == -EEXIST);
            CHECK(!again.file.is_open());
            CHECK(message_has("O_EXCL"));

            OpenResult dir = co_await DirectFile::open_async(d.p.str(), ro);
            REQUIRE(!dir);
            CHECK(dir.res == -EISDIR);
            CHECK(!dir.file.is_open());
            CHECK(message_has(d.p.c_str()));

            OpenOptions bad;
            bad.truncate = true; // without write
            OpenResult refused = co_await DirectFile::open_async(p.str(), bad);
            REQUIRE(!refused);
            CHECK(refused.res == -EINVAL);
            CHECK(!refused.file.is_open());
            CHECK(message_has("truncate requires write"));
        }());
    }

    TEST_CASE("open_async on the ext4 build tree learns the alignment like open") {
        TempPath p(build_tree_dir());
        sync_wait([&]() -> Task<void> {
            OpenResult f = co_await DirectFile::open_async(p.str(), rw_create());
            if (!f) {
                skip(std::string("open_async on the build tree failed: ") + last_error_message());
                co_return;
            }
            DirectFile sync_open = DirectFile::open(p.str(), OpenOptions{});
            CHECK(f.file.offset_alignment() == sync_open.offset_alignment());
            CHECK(f.file.memory_alignment() == sync_open.memory_alignment());
            CHECK(f.file.alignment_source() == sync_open.alignment_source());
        }());
    }

    TEST_CASE("fs::mkdir, unlink and rmdir work and report EEXIST, ENOENT, ENOTDIR, EISDIR") {
        TempDir d;
        const std::string sub = d.sub("a");
        const std::string file = d.sub("f");
        sync_wait([&]() -> Task<void> {
            CHECK((co_await fs::mkdir(sub, 0700)).res == 0);
            struct stat st {};
            REQUIRE(::stat(sub.c_str(), &st) == 0);
            CHECK(S_ISDIR(st.st_mode));
            CHECK((st.st_mode & 0777) == 0700);

            CHECK((co_await fs::mkdir(sub)).res == -EEXIST);
            CHECK(message_has("mkdir"));
            CHECK(message_has(sub.c_str()));

            touch(file);
            CHECK((co_await fs::unlink(sub)).res == -EISDIR);
            CHECK((co_await fs::mkdir(file + "/x")).res == -ENOTDIR);
            CHECK((co_await fs::unlink(file)).res == 0);
            CHECK(!exists(file));
            CHECK((co_await fs::unlink(file)).res == -ENOENT);
            CHECK(message_has("unlink"));
            CHECK(message_has("No such file"));

            touch(sub + "/inner");
            CHECK((co_await fs::rmdir(sub)).res == -ENOTEMPTY);
            CHECK((co_await fs::unlink(sub + "/inner")).res == 0);
            CHECK((co_await fs::rmdir(sub)).res == 0);
            CHECK(!exists(sub));
        }());
    }

    TEST_CASE(
        "fs::rename moves, refuses to replace with noreplace, exchanges, and reports errors") {
        TempDir d;
        const std::string a = d.sub("a"), b = d.sub("b"), c = d.sub("c");
        posix_write_pattern(a, 0, 100, 1);
        posix_write_pattern(b, 0, 200, 2);
        sync_wait([&]() -> Task<void> {
            CHECK((co_await fs::rename(a, b, fs::RenameFlags::noreplace)).res == -EEXIST);
            CHECK(message_has("rename"));
            CHECK(message_has(b.c_str()));
            CHECK(file_size(a) == 100);

            CHECK((co_await fs::rename(a, b, fs::RenameFlags::exchange)).res == 0);
            CHECK(file_size(a) == 200);
            CHECK(file_size(b) == 100);

            CHECK((co_await fs::rename(a, c, fs::RenameFlags::exchange)).res == -ENOENT);
            CHECK(
                (co_await fs::rename(a, c, fs::RenameFlags::noreplace | fs::RenameFlags::exchange))
                    .res == -EINVAL);
            CHECK((co_await fs::rename(a, c)).res == 0);
            CHECK(!exists(a));
            CHECK(file_size(c) == 200);
            CHECK((co_await fs::rename(a, c)).res == -ENOENT);
            CHECK((co_await fs::rename(c, b + "/x")).res == -ENOTDIR);
        }());
    }

    TEST_CASE("fs::rename across filesystems fails with EXDEV") {
        TempPath shm; // tmpfs
        TempPath ext4(build_tree_dir(), "xdev");
        struct stat s1 {
        }, s2{};
        touch(shm.str());
        REQUIRE(::stat(shm.c_str(), &s1) == 0);
        REQUIRE(::stat(build_tree_dir().c_str(), &s2) == 0);
        if (s1.st_dev == s2.st_dev) {
            skip("the test directory and the build tree are on one filesystem");
            return;
        }
        sync_wait([&]() -> Task<void> {
            CHECK((co_await fs::rename(shm.str(), ext4.str())).res == -EXDEV);
            CHECK(message_has("Invalid cross-device link"));
        }());
        CHECK(exists(shm.str()));
    }

    TEST_CASE("fs::statx reports size and type, and ENOENT for a missing path") {
        TempPath p;
        posix_write_pattern(p.str(), 0, 12345, 1);
        sync_wait([&]() -> Task<void> {
            struct ::statx stx {};
            CHECK((co_await fs::statx(p.str(), stx)).res == 0);
            CHECK((stx.stx_mask & STATX_SIZE) != 0);
            CHECK(stx.stx_size == 12345);
            CHECK(S_ISREG(stx.stx_mode));
            CHECK((co_await fs::statx(p.str() + ".missing", stx)).res == -ENOENT);
            CHECK(message_has("statx"));
            CHECK((co_await fs::statx(p.str() + "/x", stx)).res == -ENOTDIR);
        }());
    }

    TEST_CASE(
        "ftruncate grows and shrinks O_DIRECT and buffered files and fails on a read-only one") {
        for (bool direct : {true, false}) {
            CAPTURE(direct);
            TempPath p;
            OpenOptions o = rw_create();
            o.direct = direct;
            auto f = open_or_skip(p.str(), o);
            if (!f) {
                return;
            }
            sync_wait([&]() -> Task<void> {
                CHECK((co_await f->ftruncate(1 << 20)).res == 0);
                CHECK(f->size() == (1u << 20));
                CHECK((co_await f->ftruncate(4096)).res == 0);
                CHECK(f->size() == 4096);
                DirectFile ro = DirectFile::open(p.str(), OpenOptions{.direct = false});
                const IoResult r = co_await ro.ftruncate(0);
                CHECK((r.res == -EINVAL || r.res == -EBADF));
                CHECK(message_has("ftruncate"));
                CHECK(f->size() == 4096);
                CHECK((co_await f->close()).res == 0);
                CHECK((co_await f->ftruncate(0)).res == -EBADF);
            }());
        }
    }

    TEST_CASE("sync_file_range writes back a range and refuses unknown flags") {
        TempPath p;
        OpenOptions o = rw_create();
        o.direct = false;
        auto f = open_or_skip(p.str(), o);
        REQUIRE(f);
        sync_wait([&]() -> Task<void> {
            AlignedBuffer w(65536);
            fill_pattern(w.data, 65536, 0, 5);
            CHECK((co_await f->write(w.data, 65536, 0)).res == 65536);
            CHECK((co_await f->sync_file_range(0, 65536,
                                               SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                                   SYNC_FILE_RANGE_WAIT_AFTER))
                      .res == 0);
            CHECK((co_await f->sync_file_range(0, 0, 0x80)).res == -EINVAL);
            CHECK(message_has("sync_file_range"));
        }());
    }

    TEST_CASE("the reactor says which file operations are native") {
        sync_wait([]() -> Task<void> {
            Reactor* r = Reactor::current();
            CHECK(r->native(OpCode::openat));
            CHECK(r->native(OpCode::renameat));
            CHECK(r->native(OpCode::uring_raw) == (r->backend() == Backend::uring));
            if (r->backend() == Backend::asio) {
                CHECK(r->native(OpCode::ftruncate));
            }
            co_return;
        }());
    }

} // TEST_SUITE
