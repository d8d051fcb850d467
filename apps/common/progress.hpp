// SPDX-License-Identifier: MIT
// Progress: a one-line progress bar on stderr (bytes, percent, MB/s, ETA), redrawn a few
// times a second by its own thread, and only when stderr is a terminal — logs and pipes get
// nothing. Reactor threads only add to an atomic counter (relaxed: the bar is advisory).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace bioring::apps {

class Progress {
public:
    /// \param label shown before the bar; \param total bytes expected (0: no percent/ETA).
    /// \param enabled false forces it off; it is also off when stderr is not a tty.
    /// Context: main thread; starts a thread when enabled.
    Progress(std::string label, std::uint64_t total, bool enabled = true);
    /// Stops the thread and clears the line.
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    /// Count @bytes done. Context: any thread; lock-free.
    void add(std::uint64_t bytes) noexcept { done_.fetch_add(bytes, std::memory_order_relaxed); }
    /// Start a new phase (e.g. "verify") with the counter reset.
    void phase(std::string label, std::uint64_t total);
    bool active() const noexcept { return enabled_; }
    /// Stop drawing and erase the bar. Idempotent.
    void finish();

    /// The line that would be drawn (for tests). Context: any thread.
    static std::string render(const std::string& label, std::uint64_t done, std::uint64_t total,
                              double seconds);

private:
    void run();

    std::string label_;
    std::uint64_t total_ = 0;
    std::atomic<std::uint64_t> done_{0};
    std::chrono::steady_clock::time_point start_;
    bool enabled_ = false;
    bool stop_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
    std::thread thread_;
};

} // namespace bioring::apps
