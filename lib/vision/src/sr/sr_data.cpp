#include "sparsescope/vision/sr_data.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "../data/image_files.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/matlab_resize.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/utf8.h"

namespace sparsescope::vision {

namespace fs = std::filesystem;

namespace {

at::Tensor read_chw(const fs::path& path) { return image_to_tensor(read_image(path.string())).permute({2, 0, 1}).contiguous(); }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

at::Tensor bicubic_lr(const at::Tensor& hr, int64_t scale) {
  SPARSESCOPE_CHECK(hr.dim() == 3 && hr.size(0) == 3 && hr.scalar_type() == at::kByte, "bicubic_lr: expected a uint8 "
                    "[3, H, W] image, got ", hr.scalar_type(), " ", hr.sizes());
  SPARSESCOPE_CHECK(scale >= 1 && hr.size(1) % scale == 0 && hr.size(2) % scale == 0, "bicubic_lr: the sides of ",
                    hr.sizes(), " are not multiples of the scale ", scale);
  const at::Tensor lr = matlab_imresize(hr.to(at::kDouble), 1.0 / static_cast<double>(scale));
  return lr.round().clamp(0, 255).to(at::kByte);
}

SrDataset load_sr_dataset(const std::string& dir, int64_t scale, int64_t limit, int64_t min_lr_size) {
  SPARSESCOPE_CHECK(scale >= 1, "SR data: the scale must be positive, got ", scale);
  std::error_code ec;
  SPARSESCOPE_CHECK(fs::is_directory(dir, ec), "SR data: '", printable(dir), "' does not exist or is not a folder");
  fs::path root = dir;
  const fs::path per_scale = root / ("image_SRF_" + std::to_string(scale));
  if (fs::is_directory(per_scale, ec)) root = per_scale;

  SrDataset data;
  data.source = printable(root.string());
  data.scale = scale;
  const std::vector<fs::path> files = detail::list_image_files(root, data.failures);
  std::vector<std::pair<fs::path, fs::path>> pairs;  // HR, LR (empty: make it)
  for (const auto& file : files) {
    const std::string stem = file.stem().string();
    if (!ends_with(stem, "_HR")) continue;
    const fs::path lr = file.parent_path() / (stem.substr(0, stem.size() - 3) + "_LR" + file.extension().string());
    if (fs::is_regular_file(lr, ec)) pairs.emplace_back(file, lr);
  }
  data.lr_files = !pairs.empty();
  if (!data.lr_files) {
    for (const auto& file : files) pairs.emplace_back(file, fs::path());
  }

  for (const auto& [hr_path, lr_path] : pairs) {
    if (limit > 0 && static_cast<int64_t>(data.pairs.size()) >= limit) break;
    const std::string name = printable(hr_path.string());
    try {
      at::Tensor hr = read_chw(hr_path), lr;
      if (data.lr_files) {
        lr = read_chw(lr_path);
        SPARSESCOPE_CHECK(hr.size(1) == scale * lr.size(1) && hr.size(2) == scale * lr.size(2), "the HR image is ",
                          hr.size(2), " x ", hr.size(1), ", its LR '", printable(lr_path.string()), "' ", lr.size(2),
                          " x ", lr.size(1), ": not x", scale);
      } else {
        hr = hr.narrow(1, 0, hr.size(1) - hr.size(1) % scale).narrow(2, 0, hr.size(2) - hr.size(2) % scale).contiguous();
        SPARSESCOPE_CHECK(hr.size(1) >= scale && hr.size(2) >= scale, "smaller than the scale ", scale);
        lr = bicubic_lr(hr, scale);
      }
      SPARSESCOPE_CHECK(lr.size(1) >= min_lr_size && lr.size(2) >= min_lr_size, "its LR (", lr.size(2), " x ",
                        lr.size(1), ") is smaller than the ", min_lr_size, " x ", min_lr_size, " LR patch");
      data.pairs.push_back({name, hr, lr});
    } catch (const Error& e) {
      data.failures.emplace_back(name, printable(e.what()));
    }
  }
  SPARSESCOPE_CHECK(!data.pairs.empty(), "SR data: '", data.source, "' has no usable image at x", scale, " (",
                    files.size(), " image files, ", data.failures.size(), " skipped)");
  return data;
}

}  // namespace sparsescope::vision
