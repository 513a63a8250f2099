#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::vision {

namespace fs = std::filesystem;

namespace {

// torchvision's IMG_EXTENSIONS that our decoder reads.
bool is_image_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".gif";
}

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
  for (const auto& entry : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied)) {
    if (entry.is_directory()) folders.push_back(entry.path().filename().string());
  }
  std::sort(folders.begin(), folders.end());
  SPARSESCOPE_CHECK(!folders.empty(), "image folder '", dir, "' has no class folders (expected DIR/<class>/<image>)");

  ImageDataset dataset;
  dataset.source = dir;
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
    for (const auto& entry :
         fs::recursive_directory_iterator(fs::path(dir) / folder, fs::directory_options::skip_permission_denied)) {
      if (entry.is_regular_file() && is_image_file(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      try {
        images.push_back(vit_pixels(read_image(file.string()), config));
        labels.push_back(index.at(folder));
      } catch (const Error& e) {
        dataset.failures.emplace_back(file.string(), e.what());
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
