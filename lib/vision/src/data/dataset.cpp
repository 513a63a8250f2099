#include <ATen/ATen.h>

#include <filesystem>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::vision {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFashionMnist = "fashion-mnist";

bool is_dir(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// The folder an ImageFolder spec reads for `split` (see DatasetSpec).
fs::path split_dir(const fs::path& dir, Split split) {
  if (split == Split::Train) return is_dir(dir / "train") ? dir / "train" : dir;
  for (const char* name : {"val", "test"}) {
    if (is_dir(dir / name)) return dir / name;
  }
  return dir;
}

// One image of a uint8 [C, H, W] tensor (C = 1 or 3) as an RGB Image.
Image chw_to_image(const at::Tensor& chw) {
  const at::Tensor rgb = chw.size(0) == 1 ? chw.expand({3, chw.size(1), chw.size(2)}) : chw;
  return tensor_to_image(rgb.permute({1, 2, 0}).contiguous());
}

}  // namespace

DatasetSpec parse_dataset_spec(const std::string& spec) {
  const std::string prefix = std::string(kFashionMnist) + ":";
  if (spec == kFashionMnist) return {true, kFashionMnistDir};
  if (spec.compare(0, prefix.size(), prefix) == 0) {
    SPARSESCOPE_CHECK(spec.size() > prefix.size(), "dataset '", spec, "': name the folder after 'fashion-mnist:'");
    return {true, spec.substr(prefix.size())};
  }
  SPARSESCOPE_CHECK(is_dir(spec), "dataset '", spec, "' is neither 'fashion-mnist', 'fashion-mnist:DIR' nor an ",
                    "existing image folder");
  return {false, spec};
}

bool has_split(const DatasetSpec& spec, Split split) {
  if (spec.fashion_mnist || split == Split::Train) return true;
  return split_dir(spec.dir, split) != fs::path(spec.dir);
}

ImageDataset load_dataset(const DatasetSpec& spec, Split split, const ViTConfig& config,
                          const std::vector<std::string>& classes, int64_t limit) {
  ImageDataset dataset = spec.fashion_mnist ? load_fashion_mnist(spec.dir, split)
                                            : load_image_folder(split_dir(spec.dir, split).string(), config, classes);
  if (limit > 0 && limit < dataset.size()) {
    dataset.images = dataset.images.narrow(0, 0, limit);
    dataset.labels = dataset.labels.narrow(0, 0, limit);
  }
  return fit_to_model(std::move(dataset), config);
}

ImageDataset fit_to_model(ImageDataset dataset, const ViTConfig& config) {
  const at::Tensor& images = dataset.images;
  if (images.size(1) == config.in_chans && images.size(2) == config.img_size && images.size(3) == config.img_size) {
    return dataset;
  }
  std::vector<at::Tensor> fitted;
  fitted.reserve(images.size(0));
  for (int64_t i = 0; i < images.size(0); ++i) fitted.push_back(vit_pixels(chw_to_image(images[i]), config));
  dataset.images = at::stack(fitted);  // [N, in_chans, S, S]
  return dataset;
}

}  // namespace sparsescope::vision
