// SPDX-License-Identifier: MIT
// this_bio: `Bio* bio = co_await bioring::this_bio;` inside a Task gives the Bio that sits
// behind the running coroutine's frame (nullptr for a heap frame). It costs a couple of
// loads: the promise learned its Bio from operator new (runtime/task.hpp), and the
// awaiter reads it through the handle in an await_suspend that returns false (no real
// suspension). It works in Task coroutines only (the awaiter needs bioring's promise).
#pragma once

#include <bioring/runtime/task.hpp>
