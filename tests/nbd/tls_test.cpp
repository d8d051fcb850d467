// SPDX-License-Identifier: MIT
// bioring-nbd with TLS (--tls on|require, --tls-certificates, --tls-verify-peer) against real
// clients: nbdinfo and nbdcopy over nbds+unix and nbds:// (TCP), qemu-img through a
// tls-creds-x509 object, python3-libnbd and Python's ssl module (tests/nbd/tls_cases.py:
// TLS_REQD before STARTTLS, what runs inside TLS, refused client certificates, garbage
// instead of a ClientHello). The certificates (a CA, a server certificate for localhost, a
// client of the same CA and one of another CA) are made at test time by make_certs.sh with
// the openssl CLI. The server is this build tree's binary, so the ASan tree runs it under
// ASan/LeakSanitizer and BIORING_BACKEND=asio (inherited) runs it on the Asio backend;
// every case ends with SIGTERM, exit 0 and no sanitizer report on the server's stderr.
#include "tests/apps/app_support.hpp"
#include "tests/nbd/server_support.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

using apps_test::contains;
using apps_test::Scratch;
using nbd_test::Server;
using nbd_test::tool;

namespace {

constexpr std::size_t MiB = 1 << 20;

const std::filesystem::path here = std::filesystem::path(__FILE__).parent_path();

#define SKIP_WITHOUT(...)                                                                          \
    do {                                                                                           \
        const std::string m = nbd_test::missing({__VA_ARGS__});                                    \
        if (!m.empty()) {                                                                          \
            BIORING_SKIP(m + " is not installed (./run setup)");                                   \
        }                                                                                          \
    } while (0)

/// make_certs.sh into @dir/certs. Returns: that directory.
std::string make_certs(const Scratch& dir) {
    const std::string certs = (dir / "certs").string();
    auto r = apps_test::run({"/bin/sh", (here / "make_certs.sh").string(), certs}, dir.path);
    REQUIRE_MESSAGE(r.status == 0, r.err);
    return certs;
}

/// SIGTERM: exit 0, data flushed, and no sanitizer report.
void expect_clean_stop(Server& s) {
    apps_test::Result r = s.stop(SIGTERM);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.err, "data flushed"));
    for (const char* bad : {"AddressSanitizer", "LeakSanitizer", "runtime error:"}) {
        CHECK_MESSAGE(!contains(r.err, bad), r.err);
    }
}

bool have_python_libnbd() {
    return apps_test::run({"/usr/bin/python3", "-c", "import nbd"}, "/dev/shm").status == 0;
}

/// tls_cases.py @which against @s.
void tls_cases(const char* which, const Server& s, const std::string& certs,
               const std::string& disk, const Scratch& dir) {
    auto r = apps_test::run({"/usr/bin/python3", (here / "tls_cases.py").string(), which,
                             s.socket_path(), certs, disk, std::to_string(s.pid())},
                            dir.path);
    MESSAGE(r.out);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(contains(r.out, std::string("ok ") + which + "\n"));
}

std::string tls_uri(const Server& s, const std::string& certs, const char* who = "client") {
    return "nbds+unix:///?socket=" + s.socket_path() + "&tls-certificates=" + certs + "/" + who;
}

} // namespace

TEST_SUITE("nbd") {

    TEST_CASE("tls: nbdinfo and nbdcopy over nbds+unix round-trip the data with --tls require") {
        SKIP_WITHOUT("nbdinfo", "nbdcopy", "openssl");
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string src = (dir / "src.img").string();
        apps_test::write_file(src, apps_test::random_string(24 * MiB, 21));
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, "");
        std::filesystem::resize_file(disk, 24 * MiB);
        Server s(dir.path, {"--threads", "2", "--tls", "require", "--tls-certificates",
                            certs + "/server", disk});
        CHECK(contains(s.banner(), "TLS required"));

        auto r = tool({"nbdinfo", tls_uri(s, certs)}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(contains(r.out, "with TLS"));
        CHECK(contains(r.out, "export-size: 25165824"));
        // Four connections with 64 requests in flight each: replies and reads interleave
        // on every session.
        r = tool({"nbdcopy", "--connections=4", "--requests=64", "--flush", src, tls_uri(s, certs)},
                 dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(apps_test::slurp(disk) == apps_test::slurp(src));
        const std::string back = (dir / "back.img").string();
        r = tool({"nbdcopy", "--connections=4", "--requests=64", tls_uri(s, certs), back},
                 dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(apps_test::slurp(back) == apps_test::slurp(src));
        // The same URI without TLS is refused.
        r = tool({"nbdinfo", s.uri()}, dir.path);
        CHECK(r.status != 0);
        expect_clean_stop(s);
    }

    TEST_CASE("tls: nbdcopy over nbds://localhost on TCP round-trips the data") {
        SKIP_WITHOUT("nbdcopy", "openssl");
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, std::string(8 * MiB, '\0'));
        Server s(dir.path,
                 {"--listen", "127.0.0.1:0", "--tls", "require", "--tls-certificates",
                  certs + "/server", disk},
                 false);
        std::smatch m;
        REQUIRE(std::regex_search(s.banner(), m, std::regex(R"(127\.0\.0\.1:(\d+))")));
        const std::string uri =
            "nbds://localhost:" + m[1].str() + "/?tls-certificates=" + certs + "/client";
        const std::string src = (dir / "src.img").string();
        apps_test::write_file(src, apps_test::random_string(8 * MiB, 22));
        auto r = tool({"nbdcopy", "--connections=2", src, uri}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(apps_test::slurp(disk) == apps_test::slurp(src));
        const std::string back = (dir / "back.img").string();
        r = tool({"nbdcopy", uri, back}, dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(apps_test::slurp(back) == apps_test::slurp(src));
        expect_clean_stop(s);
    }

    TEST_CASE("tls: qemu-img converts onto the export and compares it through tls-creds-x509") {
        SKIP_WITHOUT("qemu-img", "openssl");
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string src = (dir / "src.img").string();
        apps_test::write_file(src, apps_test::random_string(8 * MiB, 23));
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, apps_test::random_string(8 * MiB, 24)); // overwritten
        Server s(dir.path, {"--tls", "require", "--tls-certificates", certs + "/server", disk});
        const std::string creds = "tls-creds-x509,id=tls0,endpoint=client,dir=" + certs + "/client";
        // A Unix socket has no host name: qemu checks the certificate against tls-hostname.
        const std::string nbd_opts =
            "driver=nbd,path=" + s.socket_path() + ",tls-creds=tls0,tls-hostname=localhost";
        auto r = tool({"qemu-img", "convert", "--object", creds, "-n", "-f", "raw",
                       "--target-image-opts", src, nbd_opts},
                      dir.path);
        REQUIRE_MESSAGE(r.status == 0, r.err);
        CHECK(apps_test::slurp(disk) == apps_test::slurp(src));
        r = tool({"qemu-img", "compare", "--object", creds, "--image-opts", nbd_opts,
                  "driver=raw,file.filename=" + src},
                 dir.path);
        CHECK_MESSAGE(r.status == 0, r.out << r.err);
        // A differing byte is found through TLS too.
        int fd = ::open(src.c_str(), O_WRONLY | O_CLOEXEC);
        REQUIRE(::pwrite(fd, "!", 1, 3 * MiB + 5) == 1);
        ::close(fd);
        r = tool({"qemu-img", "compare", "--object", creds, "--image-opts", nbd_opts,
                  "driver=raw,file.filename=" + src},
                 dir.path);
        CHECK(r.status == 1);
        CHECK(contains(r.out, "Content mismatch"));
        expect_clean_stop(s);
    }

    TEST_CASE(
        "tls: --tls require answers only STARTTLS and ABORT in clear and TLS carries the rest") {
        if (!have_python_libnbd() || !nbd_test::missing({"openssl"}).empty()) {
            BIORING_SKIP("python3-libnbd or openssl is not installed (./run setup)");
        }
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, apps_test::random_string(8 * MiB, 25));
        Server s(dir.path, {"--tls", "require", "--tls-certificates", certs + "/server", disk});
        tls_cases("require", s, certs, disk, dir);
        expect_clean_stop(s);
    }

    TEST_CASE("tls: --tls on serves clients with and without TLS and --tls off has no STARTTLS") {
        if (!have_python_libnbd() || !nbd_test::missing({"openssl"}).empty()) {
            BIORING_SKIP("python3-libnbd or openssl is not installed (./run setup)");
        }
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, apps_test::random_string(8 * MiB, 26));
        {
            Server s(dir.path, {"--tls", "on", "--tls-certificates", certs + "/server", disk});
            CHECK(contains(s.banner(), "TLS offered"));
            tls_cases("on", s, certs, disk, dir);
            expect_clean_stop(s);
        }
        {
            Server s(dir.path, {disk});
            CHECK(contains(s.banner(), "no TLS"));
            tls_cases("off", s, certs, disk, dir);
            expect_clean_stop(s);
        }
    }

    TEST_CASE(
        "tls: --tls-verify-peer refuses no certificate and another CA's and serves the CA's") {
        if (!have_python_libnbd() || !nbd_test::missing({"openssl"}).empty()) {
            BIORING_SKIP("python3-libnbd or openssl is not installed (./run setup)");
        }
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, apps_test::random_string(8 * MiB, 27));
        Server s(dir.path, {"--tls", "require", "--tls-verify-peer", "--tls-certificates",
                            certs + "/server", disk});
        CHECK(contains(s.banner(), "client certificates required"));
        tls_cases("verify", s, certs, disk, dir);
        if (!nbd_test::missing({"nbdinfo"}).empty()) {
            expect_clean_stop(s);
            return;
        }
        auto r = tool({"nbdinfo", "--size", tls_uri(s, certs, "client")}, dir.path);
        CHECK_MESSAGE(r.status == 0, r.err);
        CHECK(contains(r.out, "8388608"));
        for (const char* who : {"nocert", "foreign"}) {
            r = tool({"nbdinfo", "--size", tls_uri(s, certs, who)}, dir.path);
            CHECK_MESSAGE(r.status != 0, who);
            CHECK_FALSE(contains(r.out, "8388608"));
        }
        // The refusals are logged with OpenSSL's reason (one line a second at most).
        CHECK_MESSAGE(contains(s.err(), "TLS handshake failed"), s.err());
        expect_clean_stop(s);
    }

    TEST_CASE(
        "tls: garbage and half a ClientHello and forged records are dropped and others served") {
        if (!have_python_libnbd() || !nbd_test::missing({"openssl"}).empty()) {
            BIORING_SKIP("python3-libnbd or openssl is not installed (./run setup)");
        }
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, apps_test::random_string(8 * MiB, 28));
        Server s(dir.path, {"--threads", "2", "--tls", "require", "--tls-certificates",
                            certs + "/server", "--handshake-timeout", "2", disk});
        tls_cases("hostile", s, certs, disk, dir);
        expect_clean_stop(s);
    }

    TEST_CASE("tls: SIGTERM answers the requests in flight over TLS and exits 0") {
        if (!have_python_libnbd() || !nbd_test::missing({"openssl"}).empty()) {
            BIORING_SKIP("python3-libnbd or openssl is not installed (./run setup)");
        }
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string disk = (dir / "disk.img").string();
        apps_test::write_file(disk, std::string(8 * MiB, '\0'));
        Server s(dir.path, {"--tls", "require", "--tls-certificates", certs + "/server", disk});
        tls_cases("sigterm", s, certs, disk, dir);
        expect_clean_stop(s); // it has exited already: this collects its status
    }

    TEST_CASE("tls: command line: bad TLS options exit 2 and bad certificate files exit 1") {
        SKIP_WITHOUT("openssl");
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string f = (dir / "disk.img").string();
        apps_test::write_file(f, std::string(65536, 'x'));
        const std::string sock = (dir / "s.sock").string();
        const std::string good = certs + "/server";
        // Broken copies of the server's directory.
        auto variant = [&](const std::string& name) {
            const std::filesystem::path d = dir / name;
            std::filesystem::create_directories(d);
            for (const char* file : {"ca-cert.pem", "server-cert.pem", "server-key.pem"}) {
                std::filesystem::copy_file(good + "/" + file, d / file);
            }
            return d.string();
        };
        const std::string nokey = variant("nokey");
        std::filesystem::remove(nokey + "/server-key.pem");
        const std::string badkey = variant("badkey");
        apps_test::write_file(badkey + "/server-key.pem", "-----BEGIN PRIVATE KEY-----\nxx\n");
        const std::string otherkey = variant("otherkey");
        std::filesystem::copy_file(certs + "/client/client-key.pem", otherkey + "/server-key.pem",
                                   std::filesystem::copy_options::overwrite_existing);
        const std::string noca = variant("noca");
        std::filesystem::remove(noca + "/ca-cert.pem");
        const std::string badcert = variant("badcert");
        apps_test::write_file(badcert + "/server-cert.pem", "not a certificate\n");
        struct Case {
            std::vector<std::string> args;
            int status;
            const char* says;
        };
        const std::vector<Case> cases = {
            {{"--tls", "yes"}, 2, "--tls must be off, on or require"},
            {{"--tls", ""}, 2, "--tls"},
            {{"--tls", "require"}, 2, "needs --tls-certificates"},
            {{"--tls", "on"}, 2, "needs --tls-certificates"},
            {{"--tls-certificates", good}, 2, "--tls on or --tls require"},
            {{"--tls", "off", "--tls-certificates", good}, 2, "--tls off"},
            {{"--tls-verify-peer"}, 2, "--tls-verify-peer"},
            {{"--tls", "require", "--tls-certificates", (dir / "none").string()}, 1, "none"},
            {{"--tls", "require", "--tls-certificates", f}, 1, "not a directory"},
            {{"--tls", "require", "--tls-certificates", nokey}, 1, "nokey/server-key.pem"},
            {{"--tls", "require", "--tls-certificates", badkey}, 1, "badkey/server-key.pem"},
            {{"--tls", "on", "--tls-certificates", otherkey}, 1, "does not match"},
            {{"--tls", "on", "--tls-certificates", badcert}, 1, "badcert/server-cert.pem"},
            {{"--tls", "require", "--tls-verify-peer", "--tls-certificates", noca},
             1,
             "noca/ca-cert.pem"},
        };
        for (const auto& c : cases) {
            std::vector<std::string> argv{BIORING_NBD_EXE, "--socket", sock};
            argv.insert(argv.end(), c.args.begin(), c.args.end());
            argv.push_back(f);
            auto r = apps_test::run(argv, dir.path);
            CAPTURE(r.err);
            CHECK(r.status == c.status);
            CHECK(contains(r.err, c.says));
            CHECK_FALSE(std::filesystem::exists(sock));
        }
        // Without --tls-verify-peer ca-cert.pem is not needed.
        Server s(dir.path, {"--tls", "require", "--tls-certificates", noca, f});
        expect_clean_stop(s);
        auto r = apps_test::run({BIORING_NBD_EXE, "--help"}, dir.path);
        CHECK(contains(r.out, "--tls-certificates DIR"));
    }

    TEST_CASE("tls: --listen on a non-loopback address is served with --tls require only") {
        SKIP_WITHOUT("openssl");
        Scratch dir("shm");
        const std::string certs = make_certs(dir);
        const std::string f = (dir / "disk.img").string();
        apps_test::write_file(f, std::string(65536, '\0'));
        auto r = apps_test::run({BIORING_NBD_EXE, "--listen", "0.0.0.0:0", "--tls", "on",
                                 "--tls-certificates", certs + "/server", f},
                                dir.path);
        CHECK(r.status == 2);
        CHECK_MESSAGE(contains(r.err, "not a loopback address"), r.err);
        CHECK_MESSAGE(contains(r.err, "--tls require"), r.err);
        {
            Server s(dir.path,
                     {"--listen", "0.0.0.0:0", "--tls", "require", "--tls-certificates",
                      certs + "/server", f},
                     false);
            CHECK_MESSAGE(contains(s.err(), "without --tls-verify-peer"), s.err());
            expect_clean_stop(s);
        }
        Server s(dir.path,
                 {"--listen", "0.0.0.0:0", "--tls", "require", "--tls-verify-peer",
                  "--tls-certificates", certs + "/server", f},
                 false);
        CHECK_FALSE(contains(s.err(), "warning"));
        expect_clean_stop(s);
    }

} // TEST_SUITE
