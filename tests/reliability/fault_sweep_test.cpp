// SPDX-License-Identifier: MIT
// Fault sweep: bioring-copy, bioring-crypt encrypt and decrypt run under BIORING_FAULT rules
// (errors, EAGAIN/EINTR that io/ must retry, short transfers, delays; by nth, every and
// seeded probability), on both backends, onto an absent and onto an existing destination.
// The invariant every run must keep: exit 0 with a byte-identical destination, or exit 1
// with a message naming the app, no temporary file, an absent destination still absent and
// an existing one unchanged. Never exit 0 with wrong data, never hang.
// Also: the spec parser and FaultPlan's triggers in-process (so the sweep's rules mean what
// they say), and a bad spec failing an app with the parser's text.
#include "tests/reliability/reliability_support.hpp"

#include <bioring/io/direct_file.hpp>
#include <bioring/runtime/detail/fault_injection.hpp>
#include <bioring/runtime/reactor.hpp>
#include <bioring/runtime/sync_wait.hpp>
#include <bioring/runtime/task.hpp>
#include <bioring/runtime/when_all.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>

using namespace reliability_test;

namespace {

const std::string copy_exe = BIORING_COPY_EXE;
const std::string crypt_exe = BIORING_CRYPT_EXE;

const std::vector<std::string> rules = {
    "op=write,err=EIO,nth=1",
    "op=write,err=EIO,nth=6",
    "op=read,err=EIO,nth=2",
    "op=read,err=EIO,nth=9",
    "op=write,err=ENOSPC,nth=3",
    "op=any,err=EIO,every=7",
    "op=read,err=EAGAIN,every=3",
    "op=write,err=EAGAIN,every=2",
    "op=write,err=EINTR,every=2",
    "op=any,err=EAGAIN", // every completion: the retry bound must give up
    "op=read,short",
    "op=write,short",
    "op=write,short,every=3;op=read,short,every=4",
    "op=read,short=unaligned,nth=3",
    "op=write,short=unaligned,every=5",
    "op=write,err=ECANCELED,nth=4",
    "op=any,delay=1500,every=5",
    "op=any,hold",
    "op=read,hold,every=2;op=write,hold,p=0.5,seed=12",
    "op=any,hold,p=0.3,seed=13;op=write,err=EIO,nth=7",
    "op=fsync,err=EIO",
    "op=any,err=EIO,p=0.05,seed=1",
    "op=any,err=EIO,p=0.05,seed=2",
    "op=any,err=ENOSPC,p=0.02,seed=3",
    "op=read,short,p=0.3,seed=7;op=write,err=EAGAIN,p=0.2,seed=8",
    "op=write,short,p=0.5,seed=9;op=any,err=EIO,p=0.01,seed=10",
};

struct Tally {
    int runs = 0, ok = 0, failed = 0, ok_with_faults = 0;
    std::uint64_t faults = 0;
};

// One faulted run and the invariant. @expected: what DST must hold after a success.
void check_run(const std::string& app, std::vector<std::string> args, const fs::path& dst,
               bool preexisting, const std::string& expected, const std::string& rule,
               const std::string& backend, const fs::path& dir, Tally& t) {
    const std::string old = "previous contents, must survive a failure";
    std::error_code ec;
    fs::remove(dst, ec);
    if (preexisting) {
        write_file(dst, old);
    }
    args.push_back(dst.string());
    Result r = run_env(args, {{"BIORING_FAULT", rule}, {"BIORING_BACKEND", backend}}, dir,
                       std::chrono::seconds(60));
    CAPTURE(rule);
    CAPTURE(backend);
    CAPTURE(preexisting);
    CAPTURE(join(args));
    CAPTURE(r.err);
    const std::uint64_t faults = faults_reported(r.err);
    CHECK_MESSAGE(contains(r.err, "BIORING_FAULT="), "the child did not install the rules");
    ++t.runs;
    t.faults += faults;
    REQUIRE_MESSAGE(r.status != -1, "the app hung under faults");
    CHECK((r.status == 0 || r.status == 1));
    if (r.status == 0) {
        ++t.ok;
        t.ok_with_faults += faults > 0;
        const std::string got = slurp(dst);
        CHECK_MESSAGE(got == expected, "exit 0 with WRONG DATA (" << got.size() << " bytes, "
                                                                  << expected.size()
                                                                  << " expected)");
    } else {
        ++t.failed;
        CHECK(contains(r.err, app + ": "));
        if (preexisting) {
            CHECK_MESSAGE(slurp(dst) == old, "a failed run changed the existing destination");
        } else {
            CHECK_MESSAGE(!fs::exists(dst), "a failed run left a destination");
        }
    }
    CHECK(temps_in(dir).empty());
}

void print_tally(const char* what, const Tally& t) {
    std::printf("fault sweep %s: %d runs, %d exit 0 byte-identical (%d of them with faults "
                "injected), %d failed cleanly; %llu faults injected\n",
                what, t.runs, t.ok, t.ok_with_faults, t.failed,
                static_cast<unsigned long long>(t.faults));
}

} // namespace

TEST_SUITE("reliability") {

    TEST_CASE("fault specs parse into rules and bad specs are refused with the grammar") {
        using namespace bioring;
        auto r = parse_fault_spec("op=write,err=ENOSPC,nth=5;op=read,short,p=0.25,seed=42;every=3");
        REQUIRE(r.size() == 3);
        CHECK(r[0].op == FaultOp::write);
        CHECK(r[0].action == FaultAction::error);
        CHECK(r[0].err == ENOSPC);
        CHECK(r[0].nth == 5);
        CHECK(r[1].op == FaultOp::read);
        CHECK(r[1].action == FaultAction::short_transfer);
        CHECK(r[1].p == doctest::Approx(0.25));
        CHECK(r[1].seed == 42);
        CHECK(r[2].op == FaultOp::any);
        CHECK(r[2].err == EIO);
        CHECK(r[2].every == 3);
        CHECK(parse_fault_spec("delay=100")[0].delay_us == 100);
        CHECK(parse_fault_spec("op=read,hold,every=2")[0].action == FaultAction::hold);
        CHECK(parse_fault_spec("err=28")[0].err == 28);
        for (const char* badspec :
             {"", ";", "op=rename", "err=EWHAT", "nth=0", "nth=-1", "every=x", "p=1.5",
              "p=", "seed=3", "nth=1,every=2", "short,err=EIO", "short=half", "hold=1",
              "hold,delay=5", "bogus", "op=read,,nth=1", "err=0", "delay=99999999999"}) {
            CAPTURE(badspec);
            try {
                (void)parse_fault_spec(badspec);
                FAIL("accepted");
            } catch (const std::invalid_argument& e) {
                CHECK(contains(e.what(), "fault spec"));
                CHECK(contains(e.what(), "expected rules"));
            }
        }
    }

    TEST_CASE("fault plans fire on the nth, every nth and seeded random matching completion") {
        using namespace bioring;
        Operation rd;
        rd.code = OpCode::read;
        Operation wr;
        wr.code = OpCode::writev;
        Operation tm;
        tm.code = OpCode::timeout;
        {
            FaultPlan p(parse_fault_spec("op=write,err=EIO,nth=3"));
            std::vector<int> got;
            for (int i = 0; i < 5; ++i) {
                CHECK(p.apply(rd, 4096) == 4096); // other kinds are not counted
                CHECK(p.apply(tm, 0) == 0);
                got.push_back(p.apply(wr, 8192));
            }
            CHECK(got == std::vector<int>{8192, 8192, -EIO, 8192, 8192});
            CHECK(p.injected() == 1);
            CHECK(p.matched() == 5);
            CHECK(p.apply(wr, -ENOSPC) == -ENOSPC); // real errors pass untouched
        }
        {
            FaultPlan p(parse_fault_spec("op=read,short,every=2"));
            CHECK(p.apply(rd, 65536) == 65536);
            CHECK(p.apply(rd, 65536) == 32768);
            CHECK(p.apply(rd, 12288) == 12288);
            CHECK(p.apply(rd, 12288) == 4096); // half rounded down to the 4 KiB unit
            CHECK(p.apply(rd, 4096) == 4096);
            CHECK(p.apply(rd, 4096) == 4096); // under 8 KiB: left alone
            CHECK(p.injected() == 2);
            FaultPlan u(parse_fault_spec("op=read,short=unaligned"));
            CHECK(u.apply(rd, 4000) == 2000);
            CHECK(u.apply(rd, 1) == 1);
            CHECK(u.injected() == 1);
        }
        {
            auto draws = [] {
                FaultPlan p(parse_fault_spec("err=EAGAIN,p=0.1,seed=42"));
                std::vector<int> v;
                for (int i = 0; i < 2000; ++i) {
                    v.push_back(p.apply(Operation{OpCode::read}, 1));
                }
                return std::make_pair(v, p.injected());
            };
            const auto a = draws();
            const auto b = draws();
            CHECK(a.first == b.first); // reproducible from the seed
            CHECK(a.second > 120);
            CHECK(a.second < 280);
        }
    }

    namespace {

    bioring::Task<void> read_block(bioring::DirectFile* f, std::byte* buf, std::uint64_t i,
                                   std::vector<int>* order) {
        bioring::IoResult r = co_await f->read(buf, 4096, i * 4096);
        CHECK(r.bytes() == 4096);
        order->push_back(static_cast<int>(i));
    }

    } // namespace

    TEST_CASE("held completions arrive on a later loop turn newest first and none is lost") {
        using namespace bioring;
        Scratch d("shm");
        const std::string data = random_string(64 * 4096, 3);
        write_file(d / "f", data);
        Reactor reactor;
        FaultPlan plan(parse_fault_spec("op=read,hold"));
        plan.install(reactor);
        DirectFile f = DirectFile::open((d / "f").string());
        std::unique_ptr<std::byte, decltype(&std::free)> buf(
            static_cast<std::byte*>(std::aligned_alloc(4096, data.size())), &std::free);
        std::vector<int> order;
        std::vector<Task<void>> reads;
        for (std::uint64_t i = 0; i < 64; ++i) {
            reads.push_back(read_block(&f, buf.get() + i * 4096, i, &order));
        }
        sync_wait(when_all(std::move(reads)));
        reactor.set_completion_filter(nullptr, nullptr);
        CHECK(std::memcmp(buf.get(), data.data(), data.size()) == 0);
        CHECK(order.size() == 64);
        CHECK(plan.injected() == 64);
        CHECK(reactor.in_flight() == 0);
        // Several completions reaped in one turn come back newest first: the order is disturbed.
        CHECK_FALSE(std::is_sorted(order.begin(), order.end()));
    }

    TEST_CASE("a bad BIORING_FAULT makes an app fail with the parser's message and no output") {
        Scratch d("shm");
        write_file(d / "src", random_string(10000, 1));
        Result r = run_env({copy_exe, (d / "src").string(), (d / "dst").string()},
                           {{"BIORING_FAULT", "op=write,err=EWHAT"}}, d.path);
        CAPTURE(r.err);
        CHECK(r.status == 1);
        CHECK(contains(r.err, "BIORING_FAULT"));
        CHECK(contains(r.err, "EWHAT"));
        CHECK_FALSE(fs::exists(d / "dst"));
        CHECK(temps_in(d.path).empty());
    }

    TEST_CASE(
        "an fsync that fails at the end of a copy or crypt fails it cleanly, on both backends") {
        Scratch d("ext4");
        write_file(d / "src", random_string((1 << 20) + 1234, 12));   // an unaligned tail
        write_file(d / "pt", random_string((1 << 20) + 3 * 512, 14)); // whole sectors
        write_file(d / "key", random_string(64, 13));
        const std::string old = "previous contents, must survive a failed flush";
        for (const std::string backend : {"", "asio"}) {
            for (const bool crypt : {false, true}) {
                for (const bool preexisting : {false, true}) {
                    std::vector<std::string> args;
                    if (crypt) {
                        args = {crypt_exe, "encrypt", "--quiet", "--key-file",
                                (d / "key").string()};
                    } else {
                        args = {copy_exe, "--quiet", "--verify"};
                    }
                    args.push_back((d / (crypt ? "pt" : "src")).string());
                    args.push_back((d / "dst").string());
                    std::error_code ec;
                    fs::remove(d / "dst", ec);
                    if (preexisting) {
                        write_file(d / "dst", old);
                    }
                    Result r = run_env(
                        args, {{"BIORING_FAULT", "op=fsync,err=EIO"}, {"BIORING_BACKEND", backend}},
                        d.path);
                    CAPTURE(backend);
                    CAPTURE(join(args));
                    CAPTURE(r.err);
                    CHECK(r.status == 1);
                    CHECK(faults_reported(r.err) == 1);
                    CHECK(contains(r.err, "cannot flush '" + (d / "dst").string() + "'"));
                    CHECK(contains(r.err, std::strerror(EIO)));
                    if (preexisting) {
                        CHECK(slurp(d / "dst") == old);
                    } else {
                        CHECK_FALSE(fs::exists(d / "dst"));
                    }
                    CHECK(temps_in(d.path).empty());
                }
            }
        }
    }

    TEST_CASE("bioring-copy under a sweep of injected faults never exits 0 with wrong data") {
        Scratch d("ext4");
        // 1 MiB + an unaligned tail: 64 KiB blocks, so reads, writes and the tail all happen.
        const std::string data = random_string((1 << 20) + 1234, 11);
        write_file(d / "src", data);
        Tally t;
        int i = 0;
        for (const std::string backend : {"", "asio"}) {
            for (const auto& rule : rules) {
                const bool two = (i % 3) == 2;
                std::vector<std::string> args = {copy_exe, "--quiet", "--bs",      "64K",
                                                 "--qd",   "4",       "--threads", two ? "2" : "1"};
                if (i % 4 == 3) {
                    args.push_back("--verify"); // faults in the read-back too
                }
                args.push_back((d / "src").string());
                check_run("bioring-copy", args, d / "dst", (i++ % 2) == 0, data, rule, backend,
                          d.path, t);
            }
        }
        print_tally("bioring-copy", t);
        CHECK(t.ok > 0);
        CHECK(t.failed > 0);
        CHECK(t.ok_with_faults > 0); // retries and short transfers were absorbed somewhere
        CHECK(t.faults >= static_cast<std::uint64_t>(t.runs) / 2);
    }

    TEST_CASE("bioring-crypt encrypt and decrypt under a sweep of injected faults never exit 0 "
              "with wrong data") {
        Scratch d("ext4");
        write_file(d / "key", random_string(64, 21));
        const std::string plain = random_string((1 << 20) + 3 * 512, 22);
        write_file(d / "pt", plain);
        const std::string key = (d / "key").string();
        Result ref = run_env({crypt_exe, "encrypt", "--quiet", "--key-file", key,
                              (d / "pt").string(), (d / "ct").string()},
                             {{"BIORING_FAULT", ""}}, d.path);
        REQUIRE(ref.status == 0);
        const std::string cipher = slurp(d / "ct");
        REQUIRE(cipher.size() == plain.size());
        REQUIRE(cipher != plain);
        Tally t;
        int i = 0;
        for (const std::string backend : {"", "asio"}) {
            for (const auto& rule : rules) {
                const bool enc = (i % 2) == 0;
                check_run("bioring-crypt",
                          {crypt_exe, enc ? "encrypt" : "decrypt", "--quiet", "--key-file", key,
                           "--bs", "64K", "--qd", "4", "--threads", (i % 3) == 1 ? "2" : "1",
                           (d / (enc ? "pt" : "ct")).string()},
                          d / "out", (i / 2) % 2 == 0, enc ? cipher : plain, rule, backend, d.path,
                          t);
                ++i;
            }
        }
        print_tally("bioring-crypt", t);
        CHECK(t.ok > 0);
        CHECK(t.failed > 0);
        CHECK(t.ok_with_faults > 0);
        CHECK(t.faults >= static_cast<std::uint64_t>(t.runs) / 2);
    }

} // TEST_SUITE
