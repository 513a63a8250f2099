#pragma once
// What every batch command shares: turning the user's paths into items, skipping finished ones,
// reporting failed ones without stopping, and the final summary and exit status.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace sparsescope::cli {

/// One unit of work: a file the user named or one found under a folder they named.
struct Item {
  std::filesystem::path source;  // as found on disk
  std::string name;              // relative to the folder it was found in (or the file name)
};

/// Files are taken as given (a non-image among them becomes a reported failure); folders are
/// walked recursively for files whose extension is in `extensions` (lower case, with the dot).
/// A path that does not exist throws sparsescope::Error naming it.
std::vector<Item> expand_inputs(const std::vector<std::string>& paths, const std::vector<std::string>& extensions);

/// Counts and failures of a batch; prints one line per failure and decides the exit status.
class BatchReport {
 public:
  void succeeded() { ++succeeded_; }
  void skipped() { ++skipped_; }
  void failed(const std::string& item, const std::string& reason);

  /// 0 when nothing failed, 1 otherwise.
  int exit_status() const { return failures_.empty() ? 0 : 1; }
  nlohmann::json summary(double seconds) const;
  std::string last_failure_line() const;

 private:
  std::size_t succeeded_ = 0;
  std::size_t skipped_ = 0;
  std::vector<std::pair<std::string, std::string>> failures_;
};

/// Extensions `expand_inputs` collects from folders for image commands.
const std::vector<std::string>& image_extensions();

}  // namespace sparsescope::cli
