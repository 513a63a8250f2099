#include "sparsescope/vision/output_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/utf8.h"

namespace sparsescope::vision {

namespace fs = std::filesystem;

OutputDir::OutputDir(const std::string& path, const std::string& flag) : path_(path) {
  SPARSESCOPE_CHECK(!path.empty(), flag, " is empty; name an output folder");
  std::error_code ec;
  const auto status = fs::status(path_, ec);
  SPARSESCOPE_CHECK(!fs::exists(status) || fs::is_directory(status), flag, " '", printable(path),
                    "' is a file, not a folder");
  fs::create_directories(path_, ec);
  SPARSESCOPE_CHECK(!ec, flag, " '", printable(path), "': cannot create the folder: ", ec.message());
  const std::string lock = (path_ / ".sparsescope.lock").string();
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  SPARSESCOPE_CHECK(lock_fd_ >= 0, flag, " '", printable(path), "': cannot write in the folder: ",
                    std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    const auto n = ::pread(lock_fd_, holder, sizeof holder - 1, 0);
    ::close(lock_fd_);
    lock_fd_ = -1;
    SPARSESCOPE_FAIL(flag, " '", printable(path), "' is in use by another sparsescope run (process ",
                     n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string("unknown"),
                     "); wait for it to finish or give another folder");
  }
  const std::string pid = std::to_string(::getpid());
  // The process number only improves the message of a refused run; the lock holds without it.
  if (::ftruncate(lock_fd_, 0) == 0) [[maybe_unused]] const auto written = ::pwrite(lock_fd_, pid.data(), pid.size(), 0);
}

OutputDir::~OutputDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

}  // namespace sparsescope::vision
