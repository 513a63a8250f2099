#pragma once
// Image-text pairs as open_clip's CsvDataset reads them (--csv-separator '\t', --csv-img-key
// filepath, --csv-caption-key title): a header line naming the columns, then one pair per line; an
// image may appear on several lines (one per caption). Images are decoded once and kept at the
// model's input geometry as uint8.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/eval_transform.h"
#include "sparsescope/vision/image.h"

namespace sparsescope::vlm {

struct ImageTextPairs {
  at::Tensor images;                      ///< uint8 [I, 3, S, S], CPU, one per distinct file
  std::vector<std::string> image_files;   ///< [I], as resolved
  std::vector<std::string> captions;      ///< [T]
  std::vector<int64_t> caption_image;     ///< [T]: the image of each caption
  /// With a boxes column: per image its region crops, uint8 [R, 3, S, S] (R may be 0).
  std::vector<at::Tensor> regions;
  std::string source;
  std::vector<std::pair<std::string, std::string>> failures;  ///< skipped lines and files: (what, why)
};

/// Reads `tsv` (columns `image_column` and `caption_column`, tab-separated; paths relative to the
/// file's folder), each image through `geometry`'s resize and crop (eval_geometry). Lines with a
/// wrong column count or an empty caption and unreadable images are skipped into `failures`.
/// `limit` > 0 keeps the first `limit` pairs. With `boxes_column` not empty, that column (required)
/// lists the image's regions in its own pixels, "x1,y1,x2,y2" separated by ';' (DCLIP's detector
/// boxes; the first line of an image gives them), each cropped from the decoded image (clipped to
/// it; empty boxes dropped) and resized to S x S without keeping its aspect (bilinear, as
/// torchvision's Resize((S, S)) on a PIL crop); a malformed list skips the line. Throws
/// sparsescope::Error naming the file when it cannot be read, lacks a column, or leaves no pair.
ImageTextPairs load_image_text_pairs(const std::string& tsv, const vision::EvalTransform& geometry, int64_t limit = 0,
                                     const std::string& image_column = "filepath",
                                     const std::string& caption_column = "title", const std::string& boxes_column = "");

/// A box list "x1,y1,x2,y2;..." in pixels (DCLIP's regions); throws sparsescope::Error naming the
/// box that is not four integers.
std::vector<std::array<int, 4>> parse_region_boxes(const std::string& text);
/// The crops of `boxes` from `image`, each clipped to it (empty ones dropped) and resized to
/// size x size without keeping its aspect (bilinear): uint8 [R, 3, size, size].
at::Tensor region_crops(const vision::Image& image, const std::vector<std::array<int, 4>>& boxes, int size);

/// Labelled images for zero-shot classification: an ImageFolder tree (DIR/<class>/<image>, or
/// DIR/val or DIR/test when present) at `geometry`, the class names as prompts take them (folder
/// names with '_' as ' ').
struct ZeroShotSet {
  vision::ImageDataset data;             ///< uint8 [N, 3, S, S] and labels
  std::vector<std::string> classnames;   ///< for the prompts
};
/// Throws sparsescope::Error naming the folder when it has no class folder or readable image; skipped
/// images are in data.failures. `limit` > 0 keeps the first `limit` images.
ZeroShotSet load_zero_shot_set(const std::string& dir, const vision::EvalTransform& geometry, int64_t limit = 0);

}  // namespace sparsescope::vlm
