// SPDX-License-Identifier: MIT
// The driver shared by bioring-copy and bioring-crypt: opening files with an O_DIRECT
// fallback, the data phase (pipeline, fsync, optional verify, commit, summary) and main()'s
// error handling (exit 2 for a UsageError, 1 for any other failure).
#pragma once

#include "apps/common/pipeline.hpp"
#include <bioring/io/direct_file.hpp>

#include <cstdint>
#include <string>
#include <sys/stat.h>

namespace bioring::apps {

class SafeOutput;

/// Open @path for O_DIRECT; a filesystem that refuses O_DIRECT (EINVAL) gets a buffered
/// open, with a note on stderr prefixed by @prog.
DirectFile open_file(const char* prog, const std::string& path, OpenOptions oo);

/// Open the source @path (stat @st from check_source) for the pipeline. A regular file that
/// reports size 0 but yields data when read (a /proc or /sys pseudo-file) is read to its
/// end with buffered reads, as cp does, into an anonymous memory file that becomes the
/// source, so DST gets what was actually there (a note on stderr says so). At most
/// pseudo_file_limit bytes are taken that way; more is refused.
/// Returns: the file; throws std::system_error naming @path.
DirectFile open_source(const char* prog, const std::string& path, const struct stat& st);

/// The most bytes open_source() reads from a source that reports size 0.
inline constexpr std::uint64_t pseudo_file_limit = 64ull << 20;

/// What a run prints and reports, beyond the pipeline configuration.
struct RunOptions {
    const char* prog = nullptr;      ///< "bioring-copy"
    const char* operation = nullptr; ///< "copy", "encrypt", "decrypt": progress label, summary
    std::string src, dst;            ///< names as given on the command line
    bool verify = false;
    bool json = false;
    bool quiet = false;
};

/// Run the pipeline from @src to @dst (the write side of @out) with @cfg (its progress is
/// set here), fsync, verify when asked, close @dst, commit @out and print the summary.
/// Throws: on any failure (the SafeOutput left uncommitted removes its temporary file).
/// Returns: 0.
int run_and_commit(DirectFile& src, DirectFile& dst, SafeOutput& out, PipelineConfig cfg,
                   const RunOptions& ro);

/// Make sure fds 0-2 are open (exit 1 if /dev/null cannot be opened), install the signal
/// cleanup for @prog and call @run, turning a UsageError into
/// "PROG: WHAT\nTry 'PROG --help'." and exit 2, any other exception into "PROG: WHAT" and 1.
int driver_main(const char* prog, int (*run)(int, char**), int argc, char** argv);

} // namespace bioring::apps
