#pragma once
// A folder a program writes its results into, created and held for the run.
#include <filesystem>
#include <string>

namespace sparsescope::vision {

/// Creates `path` (with its parents) and holds an advisory lock on `path`/.sparsescope.lock until
/// destroyed, so that a second run given the same folder is refused instead of interleaving its
/// writes with this one's. A `shard` (a name such as ".shard-0-of-4": one of several processes
/// sharing the folder, each with its own inputs) holds that lock shared with the other shards and
/// its own `path`/.sparsescope<shard>.lock exclusively: shards run side by side, a whole run and a
/// shard do not, nor two runs of one shard. Throws sparsescope::Error naming `flag` for an empty
/// path, a path that is a file or cannot be created, and a folder in use (with who holds it).
class OutputDir {
 public:
  explicit OutputDir(const std::string& path, const std::string& flag = "--out", const std::string& shard = "");
  ~OutputDir();
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int lock_fd_ = -1, shard_lock_fd_ = -1;
};

}  // namespace sparsescope::vision
