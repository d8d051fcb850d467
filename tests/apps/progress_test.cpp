// SPDX-License-Identifier: MIT
// The progress line and the summary renderings (text for people, JSON for scripts).
#include "apps/common/progress.hpp"
#include "apps/common/summary.hpp"
#include "measure/json.hpp"

#include <doctest/doctest.h>

#include <string>
#include <unistd.h>

using bioring::apps::Progress;
using bioring::apps::Summary;
using bioring::measure::json_string;

TEST_SUITE("apps") {

    TEST_CASE("the progress line shows bytes percent rate and ETA") {
        const std::string line = Progress::render("copy", 512ull << 20, 1024ull << 20, 2.0);
        CAPTURE(line);
        CHECK(line.find("copy") == 0);
        CHECK(line.find(" 50%") != std::string::npos);
        CHECK(line.find("512.0 MiB / 1.0 GiB") != std::string::npos);
        CHECK(line.find("268.4 MB/s") != std::string::npos);
        CHECK(line.find("ETA 0:00:02") != std::string::npos);
        const std::string unknown = Progress::render("copy", 100, 0, 0.0);
        CHECK(unknown.find("ETA") == std::string::npos);
        CHECK(unknown.find('%') == std::string::npos);
    }

    TEST_CASE("the progress bar stays silent when stderr is not a terminal") {
        Progress p("copy", 100);
        // Under ctest stderr is a pipe or file; run by hand on a terminal the bar is on.
        CHECK(p.active() == (::isatty(STDERR_FILENO) == 1));
        Progress off("copy", 100, false);
        CHECK_FALSE(off.active());
        p.add(50);
        p.finish();
    }

    TEST_CASE("the summary renders rates and escapes JSON strings") {
        Summary s;
        s.app = "bioring-copy";
        s.operation = "copy";
        s.source = "a\"b";
        s.destination = std::string("c\\d\n") + std::string(3000, 'x');
        s.bytes = 2000000;
        s.seconds = 2.0;
        s.requests = 10;
        s.io_ops = 20;
        s.allocations = 12;
        s.block_size = 1 << 20;
        s.queue_depth = 32;
        const std::string j = s.json();
        CAPTURE(j.substr(0, 300));
        CHECK(j.find("\"source\":\"a\\\"b\"") != std::string::npos);
        CHECK(j.find("\"destination\":\"c\\\\d\\n") != std::string::npos);
        CHECK(j.find("\"mb_per_s\":1.000") != std::string::npos);
        CHECK(j.find("\"iops\":10.0") != std::string::npos);
        CHECK(j.find("\"allocations_per_request\":1.2000") != std::string::npos);
        CHECK(j.back() == '\n');
        CHECK(j[j.size() - 2] == '}');
        const std::string t = s.text();
        CHECK(t.find("1.0 MB/s") != std::string::npos);
        CHECK(t.find("1.20 allocations per request") != std::string::npos);
        CHECK(json_string(std::string(1, '\x01')) == "\"\\u0001\"");
    }

} // TEST_SUITE
