#pragma once
// What every batch command shares: turning the user's paths into items, skipping finished ones,
// reporting failed ones without stopping, and the final summary and exit status.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sparsescope/vision/output_dir.h"
#include "sparsescope/vision/utf8.h"

namespace CLI {
class App;
}

namespace sparsescope::cli {

using vision::OutputDir;
using vision::printable;

/// One unit of work: a file the user named or one found under a folder they named.
struct Item {
  std::filesystem::path source;  // as found on disk
  std::string name;              // relative to the folder it was found in (or the file name), printable()
  std::string error;             // why it cannot be read (a symbolic-link loop, a FIFO): report it as failed
};

/// Files are taken as given (a non-image among them becomes a reported failure); folders are
/// walked recursively for files whose extension is in `extensions` (lower case, with the dot).
/// The same file named twice (directly or through folders) is one item; files under `exclude`
/// (the output folder) are left out. Entries that cannot be read come back with their `error`.
/// Throws sparsescope::Error naming the path when an input does not exist, and naming both files
/// when two would have the same name (their outputs would overwrite each other).
std::vector<Item> expand_inputs(const std::vector<std::string>& paths, const std::vector<std::string>& extensions,
                                const std::filesystem::path& exclude = {});

/// `--shard I/N`: process I of N's share of a batch (DESIGN.md section 9), so that a scheduler
/// (Slurm arrays, Kubernetes jobs) can spread one batch command over processes and machines that
/// write to one output folder.
struct Shard {
  int64_t index = 0, count = 1;
  /// Items index, index + count, ... of `items` (whose order is the same in every process given the
  /// same inputs: expand_inputs').
  std::vector<Item> take(std::vector<Item> items) const;
  /// ".shard-I-of-N", or "" for a whole batch (also the name OutputDir locks the folder under).
  std::string suffix() const;
  /// `stem` + suffix() + `extension`: the batch-wide files (summary, predictions) of shards writing
  /// to one folder are never the same file.
  std::string file(const std::string& stem, const std::string& extension) const { return stem + suffix() + extension; }
};

/// Adds `--shard I/N` to `command`, parsed into `shard` (a malformed value is a usage error).
void add_shard_option(CLI::App& command, Shard& shard);

/// Counts and failures of a batch; prints one line per failure and decides the exit status.
class BatchReport {
 public:
  explicit BatchReport(Shard shard = {}) : shard_(shard) {}
  void succeeded() { ++succeeded_; }
  void skipped() { ++skipped_; }
  void failed(const std::string& item, const std::string& reason);

  /// 0 when nothing failed, 1 otherwise.
  int exit_status() const { return failures_.empty() ? 0 : 1; }
  nlohmann::json summary(double seconds) const;
  std::string last_failure_line() const;
  /// "N done, K skipped (already done), F failed"
  std::string counts_line() const;
  /// Where finish writes the summary: DIR/summary.json (summary.shard-I-of-N.json for a shard).
  std::filesystem::path summary_path(const OutputDir& out) const;
  /// Ends a batch: `summary` (with the shard, when sharded) written to summary_path atomically, then
  /// printed on stdout with `json`, else `line` on stderr; returns exit_status().
  int finish(const OutputDir& out, nlohmann::json summary, bool json, const std::string& line) const;

 private:
  Shard shard_;
  std::size_t succeeded_ = 0;
  std::size_t skipped_ = 0;
  std::vector<std::pair<std::string, std::string>> failures_;
};

/// Why a whole batch of `items` failed, in one line: out of device or host memory (with the advice
/// of a smaller --batch), LibTorch's message without its backtrace, or the exception's text.
std::string batch_failure(const std::exception& e, std::size_t items, const std::string& device);

/// The batch to run: `requested`, or fewer when `requested` images of `bytes_per_image` would not
/// fit in half of the memory this process may still use (the host's available memory, bounded by
/// its address-space limit) on a CPU `device`; a GPU's out-of-memory is a failed batch instead.
/// Prints a note naming `flag` on stderr when it lowers the batch.
int64_t fit_batch(int64_t requested, int64_t bytes_per_image, const std::string& device, const std::string& flag);

class ProgressBar;

/// Runs `work` for the item read from `source`, one at a time: a sparsescope::Error, or any other
/// exception (out of memory, device errors: batch_failure), becomes the item's failure in `report`
/// with its line printed above `progress`; then `progress` advances.
void process_item(const std::filesystem::path& source, BatchReport& report, ProgressBar& progress,
                  const std::string& device, const std::function<void()>& work);

/// An exception as one printable line: LibTorch's messages lose their backtrace.
std::string error_text(const std::exception& e);

/// Extensions `expand_inputs` collects from folders for image commands, and for video frames.
const std::vector<std::string>& image_extensions();
const std::vector<std::string>& video_extensions();
/// Whether the file's extension (any case) is one of video_extensions().
bool is_video(const std::filesystem::path& path);

}  // namespace sparsescope::cli
