// Readers refuse what is not a regular file before opening it: opening a FIFO blocks until a writer
// comes, a device or socket never ends.
#pragma once

#include <string>

namespace sparsescope::vision::io {

/// Throws sparsescope::Error naming `what` and `path` unless `path` names a regular file (after
/// following symbolic links): "cannot open <what> '<path>': <strerror>" when it cannot be found,
/// "<what> '<path>' is a folder (a FIFO, ...), not a regular file" otherwise.
void require_regular_file(const std::string& path, const char* what);

}  // namespace sparsescope::vision::io
