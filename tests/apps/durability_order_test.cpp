// SPDX-License-Identifier: MIT
// Every tool that publishes a file makes it durable in this order: the temporary file is
// synced, then renamed over DST, then DST's directory is synced (a crash at any point leaves
// either the old DST or the complete new one, and once the tool exits 0 the new name
// survives a power cut). Observed from outside with strace on the real binaries: the data
// fsync/fdatasync and the rename are the tools' own syscalls (not io_uring requests).
#include "tests/apps/app_support.hpp"

#include <map>
#include <regex>
#include <sstream>

using namespace apps_test;

namespace {

struct Event {
    std::string call; ///< fsync (fdatasync too) or rename
    std::string path; ///< the synced file, or the rename's source
    std::string to;   ///< the rename's target
};

// Parse `strace -f -o` output (-e trace=open,openat,close,fsync,fdatasync,rename,renameat,
// renameat2) into the fsync and rename events in order, with descriptors resolved to paths.
std::vector<Event> durability_events(const std::string& trace) {
    static const std::regex call_re(R"(^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+))");
    static const std::regex quoted(R"re("((?:[^"\\]|\\.)*)")re");
    std::map<std::string, std::string> pending; // pid -> text of an unfinished call
    std::map<long, std::string> fds;
    std::vector<Event> ev;
    std::istringstream in(trace);
    for (std::string line; std::getline(in, line);) {
        std::smatch m;
        const std::size_t sp = line.find_first_of(" \t");
        const std::string pid = line.substr(0, sp);
        const std::size_t unfinished = line.find(" <unfinished ...>");
        if (unfinished != std::string::npos) {
            pending[pid] = line.substr(0, unfinished);
            continue;
        }
        const std::size_t resumed = line.find(" resumed>");
        if (resumed != std::string::npos) {
            line = pending[pid] + line.substr(resumed + 9);
            pending.erase(pid);
        }
        if (!std::regex_search(line, m, call_re)) {
            continue;
        }
        const std::string call = m[2], args = m[3];
        const long ret = std::stol(m[4]);
        std::vector<std::string> paths;
        for (auto it = std::sregex_iterator(args.begin(), args.end(), quoted);
             it != std::sregex_iterator(); ++it) {
            paths.push_back((*it)[1]);
        }
        const long fd0 = std::atol(args.c_str());
        if ((call == "open" || call == "openat") && ret >= 0 && !paths.empty()) {
            fds[ret] = paths[0];
        } else if (call == "close") {
            fds.erase(fd0);
        } else if ((call == "fsync" || call == "fdatasync") && ret == 0) {
            ev.push_back({"fsync", fds.count(fd0) ? fds[fd0] : "?", ""});
        } else if (call.rfind("rename", 0) == 0 && ret == 0 && paths.size() == 2) {
            ev.push_back({"rename", paths[0], paths[1]});
        }
    }
    return ev;
}

// Run @args under strace and check the order on publishing @dst in @dir.
void check_durability_order(std::vector<std::string> args, const Scratch& d, const fs::path& dst) {
    const fs::path trace = d / "trace";
    std::vector<std::string> cmd = {"/usr/bin/strace",
                                    "-f",
                                    "-qq",
                                    "-o",
                                    trace.string(),
                                    "-e",
                                    "trace=open,openat,close,fsync,fdatasync,rename,renameat,"
                                    "renameat2"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    // LeakSanitizer cannot run under ptrace: leak checks stay with the untraced tests.
    const std::vector<std::string> env =
        bioring::test::child_env({{"ASAN_OPTIONS", "detect_leaks=0"}});
    Result r = bioring::test::Process(cmd, d.path, &env).wait();
    CAPTURE(r.err);
    REQUIRE(r.status == 0);
    const std::vector<Event> ev = durability_events(slurp(trace));
    std::string seen;
    for (const auto& e : ev) {
        seen += e.call + " " + e.path + (e.to.empty() ? "" : " -> " + e.to) + "\n";
    }
    CAPTURE(seen);
    const std::string dir = d.path.string();
    // The rename publishing DST, from a temporary file in DST's directory.
    long renamed = -1;
    std::string temp;
    for (std::size_t i = 0; i < ev.size(); ++i) {
        if (ev[i].call == "rename" && ev[i].to == dst.string()) {
            CHECK(renamed == -1); // published once
            renamed = static_cast<long>(i);
            temp = ev[i].path;
        }
    }
    REQUIRE(renamed >= 0);
    CHECK(fs::path(temp).parent_path() == d.path);
    CHECK(contains(temp, ".bioring-tmp."));
    long synced = -1, dir_synced = -1;
    for (long i = 0; i < static_cast<long>(ev.size()); ++i) {
        if (ev[i].call != "fsync") {
            continue;
        }
        if (ev[i].path == temp && i < renamed) {
            synced = i;
        }
        if ((ev[i].path == dir || ev[i].path == dir + "/") && i > renamed && dir_synced < 0) {
            dir_synced = i;
        }
    }
    CHECK_MESSAGE(synced >= 0, "the temporary file was not synced before the rename");
    CHECK_MESSAGE(dir_synced >= 0, "the directory was not synced after the rename");
}

bool have_strace() {
    return ::access("/usr/bin/strace", X_OK) == 0 &&
           run({"/usr/bin/strace", "-qq", "-e", "trace=none", "/bin/true"}, fs::current_path())
                   .status == 0;
}

} // namespace

TEST_SUITE("apps") {

    TEST_CASE("bioring-copy syncs the temporary file, renames it, then syncs the directory") {
        if (!have_strace()) {
            BIORING_SKIP("strace is not installed or cannot trace here");
        }
        for (const char* where : {"shm", "ext4"}) {
            CAPTURE(where);
            Scratch d(where);
            write_file(d / "src", random_string((1 << 20) + 333, 71));
            write_file(d / "dst", "old");
            check_durability_order(
                {BIORING_COPY_EXE, "--verify", (d / "src").string(), (d / "dst").string()}, d,
                d / "dst");
            CHECK(slurp(d / "dst") == slurp(d / "src"));
        }
    }

    TEST_CASE("bioring-crypt syncs the temporary file, renames it, then syncs the directory") {
        if (!have_strace()) {
            BIORING_SKIP("strace is not installed or cannot trace here");
        }
        for (const char* where : {"shm", "ext4"}) {
            CAPTURE(where);
            Scratch d(where);
            write_file(d / "key", random_string(64, 72));
            write_file(d / "pt", random_string((1 << 20) + 3 * 512, 73));
            check_durability_order({BIORING_CRYPT_EXE, "encrypt", "--key-file",
                                    (d / "key").string(), (d / "pt").string(), (d / "ct").string()},
                                   d, d / "ct");
            check_durability_order({BIORING_CRYPT_EXE, "decrypt", "--key-file",
                                    (d / "key").string(), (d / "ct").string(),
                                    (d / "back").string()},
                                   d, d / "back");
            CHECK(slurp(d / "back") == slurp(d / "pt"));
        }
    }

} // TEST_SUITE
