// SPDX-License-Identifier: MIT
// bioring-wal: a group-commit write-ahead log on bioring.
//   bioring-wal bench DIR ...   producers append records and wait for durability
//   bioring-wal verify FILE...  check logs block by block, record by record
// Exit status: 0 ok (verify: also a torn tail), 1 failure or damage, 2 bad usage.
#include "apps/common/args.hpp"
#include "apps/common/driver.hpp"
#include "apps/wal/commands.hpp"

#include <cstdio>
#include <cstring>
#include <string>

using namespace bioring::apps;

namespace {

constexpr const char* prog = "bioring-wal";

int run(int argc, char** argv) {
    if (argc < 2) {
        throw UsageError("missing command (bench or verify)");
    }
    const std::string cmd = argv[1];
    if (cmd == "-h" || cmd == "--help") {
        std::fputs("usage: bioring-wal bench DIR [options]\n"
                   "       bioring-wal verify [options] FILE...\n"
                   "A group-commit write-ahead log on io_uring: 'bench' appends records from\n"
                   "many producers and reports throughput and commit latency, 'verify' checks\n"
                   "logs written by it. 'bioring-wal COMMAND --help' for each command's options.\n"
                   "\n"
                   "exit status: 0 success, 1 failure (verify: damage), 2 usage error\n",
                   stdout);
        return 0;
    }
    if (cmd == "bench") {
        return wal::bench_main(argc - 1, argv + 1);
    }
    if (cmd == "verify") {
        return wal::verify_main(argc - 1, argv + 1);
    }
    throw UsageError("unknown command '" + cmd + "' (bench or verify)");
}

} // namespace

int main(int argc, char** argv) {
    return driver_main(prog, run, argc, argv);
}
