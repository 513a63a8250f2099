#include "sparsescope/vision/output_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/utf8.h"

namespace sparsescope::vision {

namespace fs = std::filesystem;

namespace {

// Opens `file` and takes `operation` (LOCK_EX or LOCK_SH) on it without waiting; on refusal, throws
// naming the folder and the holder the file records.
int take_lock(const fs::path& file, int operation, const std::string& flag, const std::string& path) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  SPARSESCOPE_CHECK(fd >= 0, flag, " '", printable(path), "': cannot write in the folder: ", std::strerror(errno));
  if (::flock(fd, operation | LOCK_NB) != 0) {
    char text[64] = {};
    const auto n = ::pread(fd, text, sizeof text - 1, 0);
    ::close(fd);
    const std::string holder = n > 0 ? std::string(text, static_cast<std::size_t>(n)) : std::string("unknown");
    SPARSESCOPE_FAIL(flag, " '", printable(path), "' is in use by another sparsescope run (",
                     std::isdigit(static_cast<unsigned char>(holder[0])) ? "process " + holder : holder,
                     "); wait for it to finish or give another folder");
  }
  return fd;
}

// Records who holds a lock; it only improves the message of a refused run, the lock holds without it.
void record_holder(int fd, const std::string& holder) {
  if (::ftruncate(fd, 0) == 0) [[maybe_unused]] const auto written = ::pwrite(fd, holder.data(), holder.size(), 0);
}

}  // namespace

OutputDir::OutputDir(const std::string& path, const std::string& flag, const std::string& shard) : path_(path) {
  SPARSESCOPE_CHECK(!path.empty(), flag, " is empty; name an output folder");
  std::error_code ec;
  const auto status = fs::status(path_, ec);
  SPARSESCOPE_CHECK(!fs::exists(status) || fs::is_directory(status), flag, " '", printable(path),
                    "' is a file, not a folder");
  fs::create_directories(path_, ec);
  SPARSESCOPE_CHECK(!ec, flag, " '", printable(path), "': cannot create the folder: ", ec.message());
  const std::string pid = std::to_string(::getpid());
  if (shard.empty()) {
    lock_fd_ = take_lock(path_ / ".sparsescope.lock", LOCK_EX, flag, path);
    record_holder(lock_fd_, pid);
    return;
  }
  lock_fd_ = take_lock(path_ / ".sparsescope.lock", LOCK_SH, flag, path);
  record_holder(lock_fd_, "--shard runs");  // no whole run holds it now: what it said is stale
  try {
    shard_lock_fd_ = take_lock(path_ / (".sparsescope" + shard + ".lock"), LOCK_EX, flag, path);
  } catch (...) {
    ::close(lock_fd_);
    throw;
  }
  record_holder(shard_lock_fd_, pid);
}

OutputDir::~OutputDir() {
  if (shard_lock_fd_ >= 0) ::close(shard_lock_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

}  // namespace sparsescope::vision
