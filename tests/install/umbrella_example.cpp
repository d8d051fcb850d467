// SPDX-License-Identifier: MIT
// The second installed-tree program: it includes only <bioring/bioring.hpp> and uses a
// Runtime of two reactors, spawn with a bounded BioSet, when_all, an owning buffer, a
// timer and the runtime's stop token. usage: umbrella_example FILE
#include <bioring/bioring.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

using namespace bioring;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t block = 4096;

// The leading BioSet& puts this request's frame in @set: one allocation per request.
Task<int> fill_and_check(BioSet&, DirectFile& file, std::uint64_t index) {
    OwnedBuffer buf = OwnedBuffer::alloc(block);
    if (!buf) {
        co_return -ENOMEM;
    }
    const auto fill = static_cast<unsigned char>('a' + index % 26);
    std::memset(buf.data(), fill, block);
    IoResult w = co_await file.write(buf.data(), block, index * block);
    std::memset(buf.data(), 0, block);
    IoResult r = co_await file.read(buf.data(), block, index * block);
    const bool same = r.bytes() == block && buf.data()[7] == std::byte{fill};
    co_return w.ok() && r.ok() && same ? 0 : -EIO;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    RuntimeOptions ro;
    ro.threads = 2;
    Runtime rt(ro);
    std::atomic<int> failed{0};
    rt.run_on_all([&](unsigned shard) -> Task<void> {
        OpenOptions how;
        how.write = true;
        how.create = true;
        DirectFile file = DirectFile::open(argv[1], how);
        BioSet set(/*pool_size=*/2, /*front_pad=*/1024);
        std::vector<Task<int>> batch;
        for (std::uint64_t i = 0; i < 8; ++i) {
            batch.push_back(fill_and_check(set, file, shard * 8 + i));
        }
        for (int status : co_await when_all(std::move(batch))) {
            failed += status != 0;
        }
        IoResult slept = co_await sleep_for(1ms, rt.stop_token());
        failed += !slept.ok();
        co_await file.close();
    });
    std::printf("umbrella example: %s; 16 blocks, %d failed\n", backend_report().c_str(),
                failed.load());
    return rt.shutdown() == 0 && failed == 0 ? 0 : 1;
}
