#pragma once
// The image files under a folder, as the dataset loaders find them.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace sparsescope::vision::detail {

/// Whether the file's extension is one of torchvision's IMG_EXTENSIONS that our decoder reads.
bool is_image_file(const std::filesystem::path& path);

/// The image files under `dir` (recursively, links followed), sorted. Entries that cannot be read
/// (a link that loops or dangles) or are no regular file go to `failures` as (path, reason).
/// Throws sparsescope::Error naming `dir` when it cannot be listed.
std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& dir,
                                                    std::vector<std::pair<std::string, std::string>>& failures);

}  // namespace sparsescope::vision::detail
