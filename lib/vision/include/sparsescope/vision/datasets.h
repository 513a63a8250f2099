#pragma once
// Labelled image-classification datasets, held in memory as uint8 pixels: Fashion-MNIST from its
// IDX files (Debian's dataset-fashion-mnist) and ImageFolder trees.
#include <ATen/core/Tensor.h>

#include <string>
#include <utility>
#include <vector>

#include "sparsescope/vision/vit_config.h"

namespace sparsescope::vision {

struct ImageDataset {
  at::Tensor images;                 ///< uint8 [N, C, H, W], C = 1 (gray) or 3 (RGB), CPU
  at::Tensor labels;                 ///< int64 [N], indices into `classes`
  std::vector<std::string> classes;  ///< class index -> name
  std::string source;                ///< what it was read from (messages, logs)
  std::vector<std::pair<std::string, std::string>> failures;  ///< skipped files: (path, reason)

  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

enum class Split { Train, Test };

/// Where Debian's dataset-fashion-mnist installs the (gzip-compressed) IDX files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

/// The ten Fashion-MNIST classes in label order (torchvision's FashionMNIST.classes).
const std::vector<std::string>& fashion_mnist_classes();

/// A Fashion-MNIST split from `dir`: {train,t10k}-images-idx3-ubyte and -labels-idx1-ubyte, each
/// plain or gzip-compressed (".gz"). Images [N, 1, H, W]. Throws sparsescope::Error naming the file
/// for a missing or malformed file, a count mismatch between images and labels, or a bad label.
ImageDataset load_fashion_mnist(const std::string& dir, Split split);

/// An ImageFolder tree (torchvision's layout, DIR/<class>/.../<image>): each image decoded and
/// brought to the input geometry of `config` (vit_pixels). Classes are the sorted folder names or,
/// when `classes` is given, those (each folder must then be one of them, a '/' in a class name
/// being written '_'). Unreadable images are skipped and listed in `failures`. Throws naming the
/// folder when it has no class folder or no readable image.
ImageDataset load_image_folder(const std::string& dir, const ViTConfig& config,
                               const std::vector<std::string>& classes = {});

/// A dataset as users name it: "fashion-mnist" (kFashionMnistDir), "fashion-mnist:DIR", or an
/// ImageFolder DIR whose split folders are used when present: DIR/train for Split::Train,
/// DIR/val or else DIR/test for Split::Test; without them DIR itself is the split.
struct DatasetSpec {
  bool fashion_mnist = false;
  std::string dir;
};
DatasetSpec parse_dataset_spec(const std::string& spec);

/// Whether the spec has a split of its own for `split` (Fashion-MNIST always; an ImageFolder DIR
/// has a test split only with DIR/val or DIR/test), so that training can tell held-out data.
bool has_split(const DatasetSpec& spec, Split split);

/// The split of `spec`, at the geometry and channels of `config` (see fit_to_model); `classes`
/// as for load_image_folder. `limit` > 0 keeps the first `limit` items.
ImageDataset load_dataset(const DatasetSpec& spec, Split split, const ViTConfig& config,
                          const std::vector<std::string>& classes = {}, int64_t limit = 0);

/// The dataset at the input geometry and channel count of `config`: each image through
/// vit_pixels, unless it is there already (then unchanged).
ImageDataset fit_to_model(ImageDataset dataset, const ViTConfig& config);

}  // namespace sparsescope::vision
