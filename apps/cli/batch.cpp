#include "batch.h"

#include <algorithm>
#include <cctype>

#include "sparsescope/kernels/error.h"

namespace sparsescope::cli {

namespace fs = std::filesystem;

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions{".png", ".jpg", ".jpeg", ".bmp", ".gif"};
  return extensions;
}

namespace {
std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}
}  // namespace

std::vector<Item> expand_inputs(const std::vector<std::string>& paths, const std::vector<std::string>& extensions) {
  std::vector<Item> items;
  for (const auto& path : paths) {
    const fs::path p(path);
    std::error_code ec;
    const auto status = fs::status(p, ec);
    SPARSESCOPE_CHECK(!ec && fs::exists(status), "input '", path, "' does not exist");
    if (!fs::is_directory(status)) {
      items.push_back({p, p.filename().string()});
      continue;
    }
    std::vector<Item> found;
    for (const auto& entry : fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied)) {
      if (!entry.is_regular_file()) continue;
      const auto ext = lower_extension(entry.path());
      if (std::find(extensions.begin(), extensions.end(), ext) == extensions.end()) continue;
      found.push_back({entry.path(), fs::relative(entry.path(), p).string()});
    }
    std::sort(found.begin(), found.end(), [](const Item& a, const Item& b) { return a.name < b.name; });
    items.insert(items.end(), found.begin(), found.end());
  }
  return items;
}

void BatchReport::failed(const std::string& item, const std::string& reason) {
  failures_.emplace_back(item, reason);
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

}  // namespace sparsescope::cli
