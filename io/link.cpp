// SPDX-License-Identifier: MIT
// Linked requests: validation, submission as one chain, results per step (link.hpp).
#include <bioring/io/link.hpp>

#include <bioring/io/error_message.hpp>

#include <cerrno>
#include <cstring>

namespace bioring::detail {

void LinkBase::fill(LinkStep* steps, unsigned end, int res) noexcept {
    for (unsigned i = 0; i < n_; ++i) {
        if (i < end) {
            results_[i].res = static_cast<int>(steps[i].expect_);
        } else if (i == end) {
            results_[i].res = res;
        } else {
            results_[i].res = -ECANCELED;
        }
    }
}

bool LinkBase::ready(LinkStep* steps, IoResult* results, unsigned n) noexcept {
    for (unsigned i = 0; i < n; ++i) {
        if (steps[i].error_ != 0) {
            for (unsigned j = 0; j < n; ++j) { // nothing ran: the others are cancelled
                results[j].res = j == i ? steps[i].error_ : -ECANCELED;
            }
            return true; // the builder set the message
        }
    }
    return false;
}

bool LinkBase::suspend(std::coroutine_handle<> waiter, LinkStep* steps, IoResult* results,
                       unsigned n) noexcept {
    steps_ = steps;
    results_ = results;
    n_ = n;
    Reactor* const r = Reactor::current();
    if (r == nullptr) {
        set_error_message("bioring: linked requests awaited on a thread without a reactor "
                          "(drive them with sync_wait() or a Runtime)");
        for (unsigned i = 0; i < n; ++i) {
            results[i].res = -ENXIO;
        }
        return false;
    }
    Operation* ops[Reactor::max_link];
    for (unsigned i = 0; i < n; ++i) {
        LinkStep& s = steps[i];
        s.owner_ = this;
        s.index_ = i;
        Operation& op = s.op_;
        op.complete = &LinkBase::on_complete;
        op.timeout_ns = 0;
        if (s.file_ != nullptr) {
            s.file_->target(op, r);
        }
        if (op.code == OpCode::read || op.code == OpCode::write || op.code == OpCode::write_flags) {
            const int index = r->buffer_index(op.addr, op.len);
            op.buf_index = index >= 0 && index <= INT16_MAX ? static_cast<std::int16_t>(index) : -1;
        }
        ops[i] = &op;
    }
    waiter_ = waiter;
    const int rc = r->submit_link(ops, n);
    if (rc < 0) {
        set_error_message("bioring: a chain of %u linked requests was refused: %s", n,
                          rc == -EOPNOTSUPP ? "not supported by this reactor's backend"
                                            : "invalid chain");
        for (unsigned i = 0; i < n; ++i) {
            results[i].res = rc;
        }
        return false;
    }
    return true;
}

void LinkBase::on_complete(Operation* op, int res) noexcept {
    LinkStep* const step = reinterpret_cast<LinkStep*>(op);
    LinkBase* const self = step->owner_;
    const unsigned end = step->index_;
    self->fill(self->steps_, end, res);
    const bool early = end + 1 < self->n_;
    if (res < 0 || early) {
        const char* file = step->file_ != nullptr ? step->file_->path.c_str() : "-";
        if (res < 0) {
            set_error_message("bioring: linked %s (step %u of %u) on %s: %s%s", step->name_,
                              end + 1, self->n_, file, strerror_text(-res),
                              early ? "; the rest of the chain was cancelled" : "");
        } else {
            set_error_message("bioring: linked %s (step %u of %u) on %s moved %d of %llu bytes; "
                              "the rest of the chain was cancelled",
                              step->name_, end + 1, self->n_, file, res,
                              static_cast<unsigned long long>(step->expect_));
        }
    }
    self->waiter_.resume();
}

} // namespace bioring::detail
