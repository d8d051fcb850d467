// SPDX-License-Identifier: MIT
#include "apps/common/driver.hpp"

#include "apps/common/args.hpp"
#include "apps/common/format.hpp"
#include "apps/common/progress.hpp"
#include "apps/common/safe_output.hpp"
#include "apps/common/summary.hpp"

#include <cerrno>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <fcntl.h>
#include <sys/mman.h>
#include <system_error>
#include <unistd.h>
#include <vector>

namespace bioring::apps {

DirectFile open_file(const char* prog, const std::string& path, OpenOptions oo) {
    try {
        return DirectFile::open(path, oo);
    } catch (const std::system_error& e) {
        if (e.code().value() != EINVAL || !oo.direct) {
            throw;
        }
    }
    std::fprintf(stderr, "%s: '%s' does not support O_DIRECT; using buffered I/O\n", prog,
                 path.c_str());
    oo.direct = false;
    return DirectFile::open(path, oo);
}

DirectFile open_source(const char* prog, const std::string& path, const struct stat& st) {
    if (!S_ISREG(st.st_mode) || st.st_size != 0) {
        return open_file(prog, path, OpenOptions{});
    }
    const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        throw std::system_error(errno, std::system_category(), "cannot read source '" + path + "'");
    }
    std::vector<char> buf(1 << 16);
    int mem = -1;
    std::uint64_t total = 0;
    auto fail = [&](int err, const std::string& what) {
        ::close(in);
        if (mem >= 0) {
            ::close(mem);
        }
        throw std::system_error(err, std::system_category(), what);
    };
    for (;;) {
        const ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fail(errno, "cannot read source '" + path + "'");
        }
        if (n == 0) {
            break;
        }
        if (mem < 0) {
            mem = ::memfd_create("bioring-source", MFD_CLOEXEC);
            if (mem < 0) {
                fail(errno, "cannot make a memory copy of source '" + path + "'");
            }
        }
        total += static_cast<std::uint64_t>(n);
        if (total > pseudo_file_limit) {
            fail(EFBIG, format("source '%s' reports size 0 but holds more than %llu bytes; "
                               "refusing to copy it",
                               path.c_str(), static_cast<unsigned long long>(pseudo_file_limit)));
        }
        for (ssize_t done = 0; done < n;) {
            const ssize_t w = ::write(mem, buf.data() + done, static_cast<std::size_t>(n - done));
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                fail(w < 0 ? errno : EIO, "cannot make a memory copy of source '" + path + "'");
            }
            done += w;
        }
    }
    ::close(in);
    if (mem < 0) {
        return open_file(prog, path, OpenOptions{}); // really empty
    }
    std::fprintf(stderr,
                 "%s: '%s' reports size 0 but holds %llu bytes (a pseudo-file): using "
                 "what was read from it\n",
                 prog, path.c_str(), static_cast<unsigned long long>(total));
    // Reopened through /proc so DirectFile owns its own descriptor; memory files take
    // O_DIRECT, and open_file falls back to buffered I/O where they do not.
    const std::string self = "/proc/self/fd/" + std::to_string(mem);
    try {
        OpenOptions oo;
        DirectFile f = DirectFile::open(self, oo);
        ::close(mem);
        return f;
    } catch (const std::system_error&) {
    }
    OpenOptions oo;
    oo.direct = false;
    try {
        DirectFile f = DirectFile::open(self, oo);
        ::close(mem);
        return f;
    } catch (const std::system_error& e) {
        ::close(mem);
        throw std::system_error(e.code(), "cannot open the memory copy of source '" + path + "'");
    }
}

int run_and_commit(DirectFile& src, DirectFile& dst, SafeOutput& out, PipelineConfig cfg,
                   const RunOptions& ro) {
    Progress progress(ro.operation, cfg.size, !ro.quiet);
    cfg.progress = &progress;

    PipelineResult r = run_copy(src, dst, cfg);
    if (r.queue_depth_lowered) {
        std::fprintf(stderr,
                     "%s: --qd %u lowered to %u: %u threads x --bs %u in flight would "
                     "pass the limit of %llu bytes (%s)\n",
                     ro.prog, cfg.queue_depth, r.queue_depth, r.threads, cfg.block_size,
                     static_cast<unsigned long long>(r.memory_limit), memory_limit_source());
    }
    if (!r.ok) {
        progress.finish();
        throw std::runtime_error(r.error);
    }
    if (ro.verify) {
        // Each reactor reads its stripe of SRC again (transformed again, when cfg has a
        // transform) and compares it with what DST holds on the device.
        progress.phase("verify", cfg.size);
        PipelineResult v = run_verify(src, dst, cfg);
        if (!v.ok) {
            progress.finish();
            throw std::runtime_error(v.error);
        }
    }
    progress.finish();
    dst = DirectFile();
    out.commit();

    Summary s;
    s.app = ro.prog;
    s.operation = ro.operation;
    s.source = ro.src;
    s.destination = ro.dst;
    s.backend = r.backend;
    s.bytes = r.bytes;
    s.seconds = r.seconds;
    s.requests = r.requests;
    s.io_ops = r.io_ops;
    s.allocations = r.counters.requests_allocated;
    s.reserve_hits = r.counters.reserve_hits;
    s.threads = r.threads;
    s.queue_depth = r.queue_depth;
    s.block_size = cfg.block_size;
    s.verified = ro.verify;
    s.in_place = out.in_place();
    if (ro.json) {
        std::fputs(s.json().c_str(), stdout);
    } else if (!ro.quiet) {
        std::fputs(s.text().c_str(), stdout);
    }
    return 0;
}

int driver_main(const char* prog, int (*run)(int, char**), int argc, char** argv) {
    if (!ensure_std_fds()) {
        return 1; // no /dev/null: nowhere safe to put fds 0-2, and no stderr to say so
    }
    install_signal_cleanup(prog);
    try {
        return run(argc, argv);
    } catch (const UsageError& e) {
        std::fprintf(stderr, "%s: %s\nTry '%s --help'.\n", prog, e.what(), prog);
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", prog, e.what());
        return 1;
    }
}

} // namespace bioring::apps
