#include <ATen/ATen.h>

#include <filesystem>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/idx.h"

namespace sparsescope::vision {

namespace fs = std::filesystem;

namespace {

// The plain file if present, else the gzip-compressed one Debian ships.
std::string find_idx(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    std::error_code ec;
    if (fs::is_regular_file(dir / name, ec)) return (dir / name).string();
  }
  SPARSESCOPE_FAIL("Fashion-MNIST: neither '", (dir / stem).string(), "' nor its .gz exists (install Debian's ",
                   "dataset-fashion-mnist, or name the folder that holds the files: fashion-mnist:DIR)");
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> classes{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return classes;
}

ImageDataset load_fashion_mnist(const std::string& dir, Split split) {
  const std::string prefix = split == Split::Train ? "train" : "t10k";
  const std::string images_path = find_idx(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_idx(dir, prefix + "-labels-idx1-ubyte");
  const at::Tensor images = read_idx(images_path);
  const at::Tensor labels = read_idx(labels_path);
  SPARSESCOPE_CHECK(images.scalar_type() == at::kByte && images.dim() == 3 && images.size(1) > 0 &&
                        images.size(2) > 0,
                    "'", images_path, "': expected uint8 images [N, H, W], got ", images.scalar_type(), " ",
                    images.sizes());
  SPARSESCOPE_CHECK(labels.scalar_type() == at::kByte && labels.dim() == 1, "'", labels_path,
                    "': expected uint8 labels [N], got ", labels.scalar_type(), " ", labels.sizes());
  SPARSESCOPE_CHECK(images.size(0) == labels.size(0), "Fashion-MNIST: '", images_path, "' holds ", images.size(0),
                    " images but '", labels_path, "' ", labels.size(0), " labels");
  SPARSESCOPE_CHECK(images.size(0) > 0, "Fashion-MNIST: '", images_path, "' holds no images");
  const int64_t max_label = labels.max().item<int64_t>();
  const auto num_classes = static_cast<int64_t>(fashion_mnist_classes().size());
  SPARSESCOPE_CHECK(max_label < num_classes, "'", labels_path, "': label ", max_label, " is out of range (",
                    num_classes, " classes)");
  ImageDataset dataset;
  dataset.images = images.unsqueeze(1);  // [N, 1, H, W]
  dataset.labels = labels.to(at::kLong);
  dataset.classes = fashion_mnist_classes();
  dataset.source = "fashion-mnist:" + dir + (split == Split::Train ? " (train)" : " (test)");
  return dataset;
}

}  // namespace sparsescope::vision
