#include "regular_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision::io {

void require_regular_file(const std::string& path, const char* what) {
  // POSIX stat rather than std::filesystem: see Note [libstdc++ and LibTorch] in cmake/.
  struct stat st {};
  SPARSESCOPE_CHECK(!path.empty(), what, ": no file named (empty path)");
  SPARSESCOPE_CHECK(::stat(path.c_str(), &st) == 0, "cannot open ", what, " '", path, "': ", std::strerror(errno));
  if (S_ISREG(st.st_mode)) return;
  const char* kind = S_ISDIR(st.st_mode)    ? "a folder"
                     : S_ISFIFO(st.st_mode) ? "a FIFO (named pipe)"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                  : "not a regular file";
  SPARSESCOPE_FAIL(what, " '", path, "' is ", kind, ", not a regular file");
}

}  // namespace sparsescope::vision::io
