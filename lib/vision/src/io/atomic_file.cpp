#include "sparsescope/vision/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // O_EXCL with mode 0666 gives a fresh file with the permissions (umask) of an ordinary one;
  // the counter and pid keep concurrent writers of the same path apart.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = (dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                                  std::to_string(counter++)))
                              .string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  SPARSESCOPE_CHECK(fd >= 0, "cannot write '", path, "': cannot create a temporary file in '", dir.string(),
                    "': ", std::strerror(errno));
  ::close(fd);
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      SPARSESCOPE_CHECK(out.good(), "cannot write '", path, "': cannot open '", tmp, "'");
      write(out);
      out.flush();
      SPARSESCOPE_CHECK(out.good(), "cannot write '", path, "': write error (disk full?)");
    }
    std::error_code ec;
    fs::rename(tmp, target, ec);
    SPARSESCOPE_CHECK(!ec, "cannot write '", path, "': rename failed: ", ec.message());
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

void write_file_atomically(const std::string& path, const void* data, std::size_t size) {
  write_file_atomically(path, [&](std::ostream& out) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  });
}

}  // namespace sparsescope::vision
