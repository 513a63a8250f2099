#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "image_files.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/utf8.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::vision {

namespace fs = std::filesystem;

namespace {

std::string folder_name(std::string class_name) {
  std::replace(class_name.begin(), class_name.end(), '/', '_');
  return class_name;
}

}  // namespace

ImageDataset load_image_folder(const std::string& dir, const ViTConfig& config,
                               const std::vector<std::string>& classes) {
  std::error_code ec;
  SPARSESCOPE_CHECK(fs::is_directory(dir, ec), "image folder '", dir, "' does not exist or is not a folder");
  std::vector<std::string> folders;
  for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code status_error;  // a link that loops or dangles is no class folder
    if (!fs::is_directory(fs::status(it->path(), status_error))) continue;
    const std::string folder = it->path().filename().string();
    SPARSESCOPE_CHECK(is_utf8(folder), "image folder '", printable(dir), "': class folder '", printable(folder),
                      "' is not named in UTF-8 (class names go into model cards and predictions); rename it");
    folders.push_back(folder);
  }
  SPARSESCOPE_CHECK(!ec, "image folder '", printable(dir), "': cannot list it: ", ec.message());
  std::sort(folders.begin(), folders.end());
  SPARSESCOPE_CHECK(!folders.empty(), "image folder '", dir, "' has no class folders (expected DIR/<class>/<image>)");

  ImageDataset dataset;
  dataset.source = printable(dir);
  std::map<std::string, int64_t> index;  // folder name -> class index
  if (classes.empty()) {
    dataset.classes = folders;
    for (size_t i = 0; i < folders.size(); ++i) index[folders[i]] = static_cast<int64_t>(i);
  } else {
    dataset.classes = classes;
    for (size_t i = 0; i < classes.size(); ++i) index[folder_name(classes[i])] = static_cast<int64_t>(i);
    for (const auto& folder : folders) {
      SPARSESCOPE_CHECK(index.count(folder), "image folder '", dir, "': folder '", folder,
                        "' is none of the model's ", classes.size(), " classes (folders are named after them, "
                        "'/' written '_')");
    }
  }

  std::vector<at::Tensor> images;
  std::vector<int64_t> labels;
  for (const auto& folder : folders) {
    std::vector<fs::path> files;
    try {
      files = detail::list_image_files(fs::path(dir) / folder, dataset.failures);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL("image folder '", printable(dir), "': ", e.what());
    }
    for (const auto& file : files) {
      try {
        images.push_back(vit_pixels(read_image(file.string()), config));
        labels.push_back(index.at(folder));
      } catch (const Error& e) {
        dataset.failures.emplace_back(printable(file.string()), printable(e.what()));
      }
    }
  }
  SPARSESCOPE_CHECK(!images.empty(), "image folder '", dir, "' has no readable images in its ", folders.size(),
                    " class folders", dataset.failures.empty() ? "" : " (every image failed to decode)");
  dataset.images = at::stack(images);  // [N, C, S, S]
  dataset.labels = at::tensor(labels, at::kLong);
  return dataset;
}

}  // namespace sparsescope::vision
