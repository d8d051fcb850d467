// SPDX-License-Identifier: MIT
// Reading a raw XTS key from a file (cryptsetup's --key-file, --keyfile-offset, --key-size),
// shared by bioring-crypt and bioring-nbd --crypt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bioring::apps {

/// Key bytes, wiped from memory when they go out of scope.
struct KeyBytes {
    std::vector<std::byte> bytes;
    KeyBytes() = default;
    KeyBytes(const KeyBytes&) = delete;
    KeyBytes& operator=(const KeyBytes&) = delete;
    ~KeyBytes();
};

/// Read @bits / 8 bytes at @offset of @path into @key (never hashed).
/// Context: any thread; blocking syscalls.
/// Returns: throws std::system_error naming the file when it cannot be opened or read, and
/// UsageError when it is a directory or FIFO or holds fewer bytes than needed.
void read_key_file(const std::string& path, unsigned bits, std::uint64_t offset, KeyBytes& key);

/// Warn on stderr ("@prog: warning: ...") when the key file at @path can be read or written
/// by its group or by others: a key that anyone on the machine can read protects nothing.
/// Context: any thread; one stat(). Returns: whether it warned (a file that cannot be
/// stat()ed is left to read_key_file's error).
bool warn_if_key_exposed(const char* prog, const std::string& path);

} // namespace bioring::apps
