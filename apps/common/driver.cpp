// SPDX-License-Identifier: MIT
#include "apps/common/driver.hpp"

#include "apps/common/args.hpp"
#include "apps/common/progress.hpp"
#include "apps/common/safe_output.hpp"
#include "apps/common/summary.hpp"

#include <cerrno>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <system_error>

namespace bioring::apps {

DirectFile open_file(const char* prog, const std::string& path, OpenOptions oo)
{
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

int run_and_commit(DirectFile& src, DirectFile& dst, SafeOutput& out, PipelineConfig cfg,
                   const RunOptions& ro)
{
    Progress progress(ro.operation, cfg.size, !ro.quiet);
    cfg.progress = &progress;

    PipelineResult r = run_copy(src, dst, cfg);
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
    s.queue_depth = cfg.queue_depth;
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

int driver_main(const char* prog, int (*run)(int, char**), int argc, char** argv)
{
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
