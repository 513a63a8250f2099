#include "image_files.h"

#include <algorithm>
#include <cctype>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/utf8.h"

namespace sparsescope::vision::detail {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".gif";
}

std::vector<fs::path> list_image_files(const fs::path& dir, std::vector<std::pair<std::string, std::string>>& failures) {
  std::vector<fs::path> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (const fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
    if (!is_image_file(it->path())) continue;
    std::error_code status_error;  // follows links: one that loops is reported, not thrown
    const fs::file_status status = fs::status(it->path(), status_error);
    if (status_error) {
      failures.emplace_back(printable(it->path().string()), "cannot read: " + status_error.message());
    } else if (fs::is_regular_file(status)) {
      files.push_back(it->path());
    } else if (!fs::is_directory(status)) {
      failures.emplace_back(printable(it->path().string()), "not a regular file");
    }
  }
  SPARSESCOPE_CHECK(!ec, "cannot list '", printable(dir.string()), "': ", ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace sparsescope::vision::detail
