// SPDX-License-Identifier: MIT
// FaultPlan and the BIORING_FAULT parser (see fault_injection.hpp for the grammar and why
// faults are injected at the completion filter).
#include <bioring/runtime/detail/fault_injection.hpp>

#include <bioring/runtime/reactor.hpp>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace bioring {
namespace {

constexpr const char* grammar =
    "expected rules separated by ';', each of comma-separated items: "
    "op=read|write|fsync|fallocate|close|any, nth=K, every=N, p=X[,seed=S], "
    "err=EIO|ENOSPC|EAGAIN|EINTR|ENOMEM|EBADF|EINVAL|EFBIG|EROFS|EDQUOT|ECANCELED|<number>, "
    "short[=unaligned], delay=US, hold";

[[noreturn]] void bad(std::string_view spec, std::string_view item, const char* why) {
    throw std::invalid_argument("fault spec \"" + std::string(spec) + "\": " + why + " in '" +
                                std::string(item) + "' (" + grammar + ")");
}

std::uint64_t parse_u64(std::string_view spec, std::string_view item, std::string_view v) {
    std::uint64_t out = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (v.empty() || ec != std::errc{} || ptr != v.data() + v.size()) {
        bad(spec, item, "not an unsigned integer");
    }
    return out;
}

int parse_errno(std::string_view spec, std::string_view item, std::string_view v) {
    static constexpr struct {
        const char* name;
        int value;
    } names[] = {{"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EAGAIN", EAGAIN},      {"EINTR", EINTR},
                 {"ENOMEM", ENOMEM}, {"EBADF", EBADF},   {"EINVAL", EINVAL},      {"EFBIG", EFBIG},
                 {"EROFS", EROFS},   {"EDQUOT", EDQUOT}, {"ECANCELED", ECANCELED}};
    for (const auto& n : names) {
        if (v == n.name) {
            return n.value;
        }
    }
    const std::uint64_t num = parse_u64(spec, item, v);
    if (num == 0 || num > 4095) {
        bad(spec, item, "errno out of range 1..4095");
    }
    return static_cast<int>(num);
}

FaultOp parse_op(std::string_view spec, std::string_view item, std::string_view v) {
    if (v == "any") {
        return FaultOp::any;
    }
    if (v == "read") {
        return FaultOp::read;
    }
    if (v == "write") {
        return FaultOp::write;
    }
    if (v == "fsync") {
        return FaultOp::fsync;
    }
    if (v == "fallocate") {
        return FaultOp::fallocate;
    }
    if (v == "close") {
        return FaultOp::close;
    }
    bad(spec, item, "unknown operation");
}

FaultRule parse_rule(std::string_view spec, std::string_view text) {
    FaultRule r;
    bool have_action = false;
    bool seeded = false;
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        if (item.empty()) {
            bad(spec, item, "empty item");
        }
        const std::size_t eq = item.find('=');
        const std::string_view key = item.substr(0, eq);
        const std::string_view val =
            eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        const bool has_val = eq != std::string_view::npos;
        auto action = [&](FaultAction a) {
            if (have_action) {
                bad(spec, item, "a second action (err, short, delay, hold) in one rule");
            }
            have_action = true;
            r.action = a;
        };
        if (key == "hold" && !has_val) {
            action(FaultAction::hold);
        } else if (key == "short" && (!has_val || val == "unaligned")) {
            action(FaultAction::short_transfer);
            r.short_unaligned = has_val;
        } else if (!has_val) {
            bad(spec, item, "unknown item or missing '=value'");
        } else if (key == "op") {
            r.op = parse_op(spec, item, val);
        } else if (key == "err") {
            action(FaultAction::error);
            r.err = parse_errno(spec, item, val);
        } else if (key == "delay") {
            action(FaultAction::delay);
            const std::uint64_t us = parse_u64(spec, item, val);
            if (us > 10'000'000) {
                bad(spec, item, "delay above 10 s");
            }
            r.delay_us = static_cast<std::uint32_t>(us);
        } else if (key == "nth") {
            r.nth = parse_u64(spec, item, val);
            if (r.nth == 0) {
                bad(spec, item, "nth counts from 1");
            }
        } else if (key == "every") {
            r.every = parse_u64(spec, item, val);
            if (r.every == 0) {
                bad(spec, item, "every needs N >= 1");
            }
        } else if (key == "p") {
            char* end = nullptr;
            const std::string s(val);
            const double p = std::strtod(s.c_str(), &end);
            if (s.empty() || end != s.c_str() + s.size() || !(p >= 0.0 && p <= 1.0)) {
                bad(spec, item, "probability must be a number in [0, 1]");
            }
            r.p = p;
        } else if (key == "seed") {
            r.seed = parse_u64(spec, item, val);
            seeded = true;
        } else {
            bad(spec, item, "unknown item");
        }
    }
    const int triggers = (r.nth != 0) + (r.every != 0) + (r.p >= 0);
    if (triggers > 1) {
        bad(spec, spec, "at most one of nth, every, p per rule");
    }
    if (seeded && r.p < 0) {
        bad(spec, spec, "seed without p");
    }
    return r;
}

bool matches(FaultOp want, OpCode code) noexcept {
    switch (code) {
    case OpCode::read:
    case OpCode::readv:
        return want == FaultOp::any || want == FaultOp::read;
    case OpCode::write:
    case OpCode::writev:
    case OpCode::write_flags:
    case OpCode::writev_flags:
        return want == FaultOp::any || want == FaultOp::write;
    case OpCode::fsync:
    case OpCode::fdatasync:
        return want == FaultOp::any || want == FaultOp::fsync;
    case OpCode::fallocate:
        return want == FaultOp::any || want == FaultOp::fallocate;
    case OpCode::close:
        return want == FaultOp::any || want == FaultOp::close;
    case OpCode::nop:
    case OpCode::timeout:
        return false;
    case OpCode::accept: // sockets: the injector's rules name file operations only
    case OpCode::connect:
    case OpCode::recv:
    case OpCode::send:
    case OpCode::recvmsg:
    case OpCode::sendmsg:
    case OpCode::send_zc:
    case OpCode::sendmsg_zc:
    case OpCode::shutdown:
        return false;
    default: // the other file operations (openat, statx, ...): only "any"
        return want == FaultOp::any;
    }
}

// splitmix64: a counter-based stream, so the n-th draw of a seed is the same on every run.
std::uint64_t mix(std::uint64_t x) noexcept {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

// Held completions of this thread's reactor (see "How hold works" in the header).
struct HoldQueue : RemoteTask {
    struct Held {
        Operation* op;
        void (*complete)(Operation*, int) noexcept;
        int res;
    };
    static constexpr std::size_t capacity = 1024;
    std::vector<Held> held;    // filled by the filter, completed by the trampoline
    std::vector<Held> running; // the batch being delivered
    bool posted = false;
};

thread_local HoldQueue tl_hold;

void run_held(RemoteTask* t) noexcept {
    auto* q = static_cast<HoldQueue*>(t);
    q->posted = false;
    q->running.swap(q->held);
    // Newest first: the reorder. A completion may submit again and be held again; that goes
    // to the (now empty) held list and a new post.
    for (std::size_t i = q->running.size(); i-- > 0;) {
        const HoldQueue::Held h = q->running[i];
        h.complete(h.op, h.res);
    }
    q->running.clear();
}

void held_trampoline(Operation* op, int res) noexcept {
    HoldQueue& q = tl_hold;
    HoldQueue::Held& h = q.held.back(); // the filter pushed it just before this call
    h.res = res;
    op->complete = h.complete;
    if (!q.posted) {
        q.posted = true;
        q.run = &run_held;
        Reactor::current()->post_remote(q);
    }
}

// Returns: false when the completion cannot be held (no reactor, list full, no memory).
bool hold(const Operation& op) noexcept {
    HoldQueue& q = tl_hold;
    if (Reactor::current() == nullptr || q.held.size() >= HoldQueue::capacity) {
        return false;
    }
    try {
        if (q.held.capacity() < HoldQueue::capacity) {
            q.held.reserve(HoldQueue::capacity);
            q.running.reserve(HoldQueue::capacity);
        }
    } catch (...) {
        return false;
    }
    // The reactor hands the filter a const view; the Operation itself is ours to redirect
    // for this one delivery (the trampoline puts the pointer back before anyone else runs).
    auto& m = const_cast<Operation&>(op);
    q.held.push_back({&m, m.complete, 0});
    m.complete = &held_trampoline;
    return true;
}

int filter(void* ctx, const Operation& op, int res) noexcept {
    return static_cast<FaultPlan*>(ctx)->apply(op, res);
}

} // namespace

std::vector<FaultRule> parse_fault_spec(std::string_view spec) {
    std::vector<FaultRule> rules;
    std::string_view rest = spec;
    while (!rest.empty()) {
        const std::size_t semi = rest.find(';');
        const std::string_view text = rest.substr(0, semi);
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        if (text.empty()) {
            continue; // "a;;b" and a trailing ';' are harmless
        }
        rules.push_back(parse_rule(spec, text));
    }
    if (rules.empty()) {
        bad(spec, spec, "no rule");
    }
    return rules;
}

FaultPlan::FaultPlan(std::vector<FaultRule> rules)
    : rules_(std::move(rules)), counts_(new std::atomic<std::uint64_t>[rules_.size()]) {
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        counts_[i].store(0, std::memory_order_relaxed);
    }
}

void FaultPlan::install(Reactor& r) noexcept {
    r.set_completion_filter(&filter, this);
}

int FaultPlan::apply(const Operation& op, int res) noexcept {
    if (res < 0) {
        return res;
    }
    bool seen = false;
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        const FaultRule& r = rules_[i];
        if (!matches(r.op, op.code)) {
            continue;
        }
        seen = true;
        const std::uint64_t n = counts_[i].fetch_add(1, std::memory_order_relaxed) + 1;
        bool fire = true;
        if (r.nth != 0) {
            fire = n == r.nth;
        } else if (r.every != 0) {
            fire = n % r.every == 0;
        } else if (r.p >= 0) {
            const double u =
                static_cast<double>(mix(r.seed * 0x100000001b3ULL + n) >> 11) * 0x1.0p-53;
            fire = u < r.p;
        }
        if (!fire) {
            continue;
        }
        if (r.action == FaultAction::short_transfer) {
            if (res < (r.short_unaligned ? 2 : 8192)) {
                continue; // nothing to shorten (this rule's count still moved on)
            }
            res = r.short_unaligned ? res / 2 : res / 2 / 4096 * 4096;
        } else if (r.action == FaultAction::hold) {
            if (!hold(op)) {
                continue;
            }
        } else if (r.action == FaultAction::delay) {
            std::this_thread::sleep_for(std::chrono::microseconds(r.delay_us));
        } else {
            res = -r.err;
        }
        injected_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    if (seen) {
        matched_.fetch_add(1, std::memory_order_relaxed);
    }
    return res;
}

namespace {

struct EnvPlan {
    std::once_flag once;
    std::string spec;
    std::string error;
    FaultPlan* plan = nullptr; // leaked on purpose: reactors may outlive static destructors
};

EnvPlan& env_plan() {
    static EnvPlan p;
    return p;
}

void report_at_exit() {
    const EnvPlan& e = env_plan();
    if (e.plan != nullptr) {
        std::fprintf(stderr,
                     "bioring: BIORING_FAULT=\"%s\": injected %llu faults in %llu matching "
                     "completions\n",
                     e.spec.c_str(), static_cast<unsigned long long>(e.plan->injected()),
                     static_cast<unsigned long long>(e.plan->matched()));
    }
}

} // namespace

FaultPlan* env_fault_plan() {
    EnvPlan& e = env_plan();
    std::call_once(e.once, [&e] {
        const char* s = std::getenv("BIORING_FAULT");
        if (s == nullptr || *s == '\0') {
            return;
        }
        e.spec = s;
        try {
            e.plan = new FaultPlan(parse_fault_spec(e.spec));
            std::atexit(&report_at_exit);
        } catch (const std::invalid_argument& ex) {
            e.error = std::string("BIORING_FAULT: ") + ex.what();
        }
    });
    if (!e.error.empty()) {
        throw std::invalid_argument(e.error);
    }
    return e.plan;
}

namespace detail {

void install_env_faults(Reactor& r) {
    if (FaultPlan* p = env_fault_plan()) {
        p->install(r);
    }
}

} // namespace detail

} // namespace bioring
