#pragma once
#include <cstddef>
#include <functional>
#include <ostream>
#include <string>

namespace sparsescope::vision {

/// Writes `path` through a temporary file in the same directory and renames it into place, so a
/// reader never sees a half-written file and a failed write leaves any old file untouched.
/// Throws sparsescope::Error naming the path and the OS error.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);
void write_file_atomically(const std::string& path, const void* data, std::size_t size);

}  // namespace sparsescope::vision
