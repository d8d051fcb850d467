// SPDX-License-Identifier: MIT
// Terminal progress bar (see progress.hpp).
#include "apps/common/progress.hpp"

#include <cstdio>
#include <unistd.h>

namespace bioring::apps {

namespace {

std::string human_bytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (b >= 1024.0 && u < 5) {
        b /= 1024.0;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}

} // namespace

Progress::Progress(std::string label, std::uint64_t total, bool enabled)
    : label_(std::move(label)), total_(total), start_(std::chrono::steady_clock::now()),
      enabled_(enabled && ::isatty(STDERR_FILENO) == 1) {
    if (enabled_) {
        thread_ = std::thread([this] { run(); });
    }
}

Progress::~Progress() {
    finish();
}

void Progress::phase(std::string label, std::uint64_t total) {
    std::lock_guard lock(mu_);
    label_ = std::move(label);
    total_ = total;
    done_.store(0, std::memory_order_relaxed);
    start_ = std::chrono::steady_clock::now();
}

void Progress::finish() {
    {
        std::lock_guard lock(mu_);
        if (stop_) {
            return;
        }
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
        std::fputs("\r\033[K", stderr);
        std::fflush(stderr);
    }
}

std::string Progress::render(const std::string& label, std::uint64_t done, std::uint64_t total,
                             double seconds) {
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
    std::string line = label + " ";
    if (total > 0) {
        const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
        const int width = 24;
        const int filled = static_cast<int>(frac * width);
        // Appended piecewise: `"[" + std::string(...)` trips GCC 12's -Wrestrict false
        // positive (GCC bug 105329).
        line += '[';
        line.append(static_cast<std::size_t>(filled), '#');
        line.append(static_cast<std::size_t>(width - filled), '.');
        line += "] ";
        char pct[16];
        std::snprintf(pct, sizeof pct, "%3.0f%% ", frac * 100.0);
        line += pct;
    }
    line += human_bytes(static_cast<double>(done));
    if (total > 0) {
        line += " / " + human_bytes(static_cast<double>(total));
    }
    char tail[64];
    std::snprintf(tail, sizeof tail, "  %.1f MB/s", rate / 1e6);
    line += tail;
    if (total > 0 && rate > 0 && done <= total) {
        const auto eta = static_cast<unsigned long>(static_cast<double>(total - done) / rate);
        std::snprintf(tail, sizeof tail, "  ETA %lu:%02lu:%02lu", eta / 3600, eta / 60 % 60,
                      eta % 60);
        line += tail;
    }
    return line;
}

void Progress::run() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stop_; })) {
        const double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        std::string line = render(label_, done_.load(std::memory_order_relaxed), total_, secs);
        std::fprintf(stderr, "\r\033[K%s", line.c_str());
        std::fflush(stderr);
    }
}

} // namespace bioring::apps
