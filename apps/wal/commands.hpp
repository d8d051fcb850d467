// SPDX-License-Identifier: MIT
// The two subcommands of bioring-wal (bench.cpp, verify.cpp), called by main.cpp with the
// arguments after the subcommand name.
#pragma once

namespace bioring::apps::wal {

/// `bioring-wal bench ...`. Returns: the exit status; throws UsageError (exit 2) or any
/// other exception (exit 1) through driver_main.
int bench_main(int argc, char** argv);
/// `bioring-wal verify ...`. As bench_main().
int verify_main(int argc, char** argv);

extern const char* const bench_usage;
extern const char* const verify_usage;

} // namespace bioring::apps::wal
