#include "batch.h"

#include "progress.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <new>

#include "progress.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/atomic_file.h"
#include "sparsescope/vision/utf8.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;
using vision::printable;

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions{".png", ".jpg", ".jpeg", ".bmp", ".gif"};
  return extensions;
}

const std::vector<std::string>& video_extensions() {
  static const std::vector<std::string> extensions{".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"};
  return extensions;
}

namespace {

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

const char* file_kind(const fs::file_status& status) {
  switch (status.type()) {
    case fs::file_type::fifo: return "a FIFO (named pipe)";
    case fs::file_type::socket: return "a socket";
    case fs::file_type::block:
    case fs::file_type::character: return "a device";
    default: return "not a regular file";
  }
}

// Whether `path` lies inside `folder` (both canonical).
bool is_under(const fs::path& path, const fs::path& folder) {
  const auto [f, p] = std::mismatch(folder.begin(), folder.end(), path.begin(), path.end());
  return f == folder.end();
}

}  // namespace

std::vector<Item> expand_inputs(const std::vector<std::string>& paths, const std::vector<std::string>& extensions,
                                const fs::path& exclude) {
  std::error_code ec;
  const fs::path excluded = exclude.empty() ? fs::path() : fs::weakly_canonical(exclude, ec);
  std::vector<Item> items;
  std::map<fs::path, std::size_t> by_file;      // canonical path -> item
  std::map<std::string, std::size_t> by_name;  // output name -> item
  auto add = [&](Item item) {
    std::error_code canonical_error;
    fs::path file = fs::weakly_canonical(item.source, canonical_error);
    if (canonical_error) file = fs::absolute(item.source).lexically_normal();
    if (!excluded.empty() && !file.empty() && is_under(file, excluded)) return;  // our own outputs
    if (!by_file.emplace(file, items.size()).second) return;                   // named twice
    const auto [other, fresh] = by_name.emplace(item.name, items.size());
    SPARSESCOPE_CHECK(fresh, "inputs '", printable(items[other->second].source.string()), "' and '",
                      printable(item.source.string()), "' would both be written as '", item.name,
                      "'; give them in separate runs with separate --out folders, or give their common folder");
    items.push_back(std::move(item));
  };
  for (const auto& path : paths) {
    const fs::path p(path);
    std::error_code status_error;
    const auto status = fs::status(p, status_error);
    if (status_error && status_error != std::errc::no_such_file_or_directory) {
      add({p, printable(p.filename().string()), "cannot read: " + status_error.message()});  // e.g. a link loop
      continue;
    }
    SPARSESCOPE_CHECK(fs::exists(status), "input '", printable(path), "' does not exist");
    if (!fs::is_directory(status)) {
      add({p, printable(p.filename().string()), fs::is_regular_file(status) ? "" : file_kind(status)});
      continue;
    }
    std::vector<Item> found;
    std::error_code walk_error;
    fs::recursive_directory_iterator it(p, fs::directory_options::skip_permission_denied, walk_error), end;
    for (; !walk_error && it != end; it.increment(walk_error)) {
      const fs::path& file = it->path();
      const auto ext = lower_extension(file);
      if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) continue;
      std::error_code entry_error;
      const fs::file_status entry = fs::status(file, entry_error);  // follows symbolic links
      if (!entry_error && fs::is_directory(entry)) continue;
      std::string error = entry_error ? "cannot read: " + entry_error.message()
                          : fs::is_regular_file(entry) ? ""
                                                       : file_kind(entry);
      found.push_back({file, printable(file.lexically_relative(p).string()), std::move(error)});
    }
    if (walk_error) found.push_back({p, printable(path), "cannot read the folder: " + walk_error.message()});
    std::sort(found.begin(), found.end(), [](const Item& a, const Item& b) { return a.name < b.name; });
    for (auto& item : found) add(std::move(item));
  }
  return items;
}

std::string batch_failure(const std::exception& e, std::size_t items, const std::string& device) {
  const std::string batch =
      items > 1 ? "a batch of " + std::to_string(items) + "; a smaller --batch may fit" : std::string("one item");
  if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) return "out of memory on " + device + " for " + batch;
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of host memory for " + batch;
  const std::string text = error_text(e);
  // LibTorch's CPU allocator reports failures as a plain c10::Error.
  if (text.find("can't allocate memory") != std::string::npos) return "out of host memory for " + batch + " (" + text + ")";
  return text;
}

namespace {

// Bytes this process may still allocate: MemAvailable of /proc/meminfo, bounded by what RLIMIT_AS
// leaves beside the current address space; 0 when unknown.
int64_t usable_host_bytes() {
  int64_t available = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    int64_t kib = 0;
    meminfo >> kib;
    if (key == "MemAvailable:") available = kib * 1024;
    meminfo.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  rlimit limit{};
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0;
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && (statm >> pages)) {
    const int64_t left = static_cast<int64_t>(limit.rlim_cur) - pages * ::sysconf(_SC_PAGESIZE);
    available = available > 0 ? std::min(available, left) : left;
  }
  return std::max<int64_t>(available, 0);
}

}  // namespace

int64_t fit_batch(int64_t requested, int64_t bytes_per_image, const std::string& device, const std::string& flag) {
  if (device != "cpu" || bytes_per_image <= 0) return requested;
  const int64_t usable = usable_host_bytes() / 2;
  if (usable <= 0 || requested * bytes_per_image <= usable) return requested;
  const int64_t fits = std::max<int64_t>(1, usable / bytes_per_image);
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  std::cerr << std::fixed << std::setprecision(1) << "sparsescope: " << flag << " " << requested << " needs about "
            << static_cast<double>(requested * bytes_per_image) / kGiB << " GiB; " << static_cast<double>(usable) / kGiB
            << " GiB can be used, so batches of " << fits << " run instead\n"
            << std::defaultfloat;
  return fits;
}

std::string error_text(const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e)) return "out of host memory";
  const auto* torch_error = dynamic_cast<const c10::Error*>(&e);
  const std::string text = torch_error ? torch_error->what_without_backtrace() : e.what();
  return printable(text.substr(0, text.find('\n')));
}

void BatchReport::failed(const std::string& item, const std::string& reason) {
  failures_.emplace_back(printable(item), printable(reason));
}

std::string BatchReport::last_failure_line() const {
  if (failures_.empty()) return {};
  return "failed: " + failures_.back().first + ": " + failures_.back().second;
}

nlohmann::json BatchReport::summary(double seconds) const {
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [item, reason] : failures_) failures.push_back({{"input", item}, {"error", reason}});
  return {{"succeeded", succeeded_},
          {"skipped", skipped_},
          {"failed", failures_.size()},
          {"failures", failures},
          {"seconds", seconds},
          {"items_per_second", seconds > 0 ? static_cast<double>(succeeded_) / seconds : 0.0}};
}

std::string BatchReport::counts_line() const {
  return std::to_string(succeeded_) + " done, " + std::to_string(skipped_) + " skipped (already done), " +
         std::to_string(failures_.size()) + " failed";
}

std::vector<Item> Shard::take(std::vector<Item> items) const {
  if (count == 1) return items;
  std::vector<Item> mine;
  for (std::size_t i = static_cast<std::size_t>(index); i < items.size(); i += static_cast<std::size_t>(count))
    mine.push_back(std::move(items[i]));
  return mine;
}

std::string Shard::suffix() const {
  return count == 1 ? std::string() : ".shard-" + std::to_string(index) + "-of-" + std::to_string(count);
}

namespace {

// "I/N" with 0 <= I < N as a Shard, or why not.
std::string parse_shard(const std::string& text, Shard* shard) {
  const auto slash = text.find('/');
  const auto number = [](const std::string& digits, int64_t* value) {
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
    *value = std::stoll(digits);
    return true;
  };
  Shard s;
  if (slash == std::string::npos || !number(text.substr(0, slash), &s.index) ||
      !number(text.substr(slash + 1), &s.count) || s.count < 1 || s.index >= s.count)
    return "expected I/N with 0 <= I < N (process I of N), got '" + text + "'";
  if (shard) *shard = s;
  return "";
}

}  // namespace

void add_shard_option(CLI::App& command, Shard& shard) {
  command
      .add_option_function<std::string>(
          "--shard", [&shard](const std::string& text) { parse_shard(text, &shard); },
          "Process I of N: take every N-th input from the I-th (0-based); the summary (and predictions) "
          "go to files named .shard-I-of-N")
      ->type_name("I/N")
      ->check(CLI::Validator([](std::string& text) { return parse_shard(text, nullptr); }, "I/N"));
}

fs::path BatchReport::summary_path(const OutputDir& out) const { return out.path() / shard_.file("summary", ".json"); }

int BatchReport::finish(const OutputDir& out, nlohmann::json summary, bool json, const std::string& line) const {
  if (shard_.count > 1) summary["shard"] = {{"index", shard_.index}, {"count", shard_.count}};
  const std::string text = summary.dump(2) + "\n";
  vision::write_file_atomically(summary_path(out).string(), text.data(), text.size());
  if (json) {
    std::cout << text;
  } else {
    std::cerr << line << "\n";
  }
  return exit_status();
}

bool is_video(const fs::path& path) {
  const std::string ext = lower_extension(path);
  return std::find(video_extensions().begin(), video_extensions().end(), ext) != video_extensions().end();
}

void process_item(const std::filesystem::path& source, BatchReport& report, ProgressBar& progress,
                  const std::string& device, const std::function<void()>& work) {
  try {
    work();
  } catch (const Error& e) {
    report.failed(source.string(), error_text(e));
    progress.print_line(report.last_failure_line());
  } catch (const std::exception& e) {  // out of memory, device errors
    report.failed(source.string(), batch_failure(e, 1, device));
    progress.print_line(report.last_failure_line());
  }
  progress.advance();
}

}  // namespace sparsescope::cli
