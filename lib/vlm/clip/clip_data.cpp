#include "sparsescope/vlm/clip_data.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/resample.h"

namespace sparsescope::vlm {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
    fields.push_back(line.substr(start, tab - start));
  }
  fields.push_back(line.substr(start));
  return fields;
}

size_t column(const std::vector<std::string>& header, const std::string& name, const std::string& tsv) {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return i;
  }
  std::string have;
  for (const auto& h : header) have += (have.empty() ? "" : ", ") + h;
  SPARSESCOPE_FAIL(tsv, ": no column '", name, "' in its header line (columns: ", have, ")");
}

at::Tensor to_chw(const vision::Image& image) {
  return at::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width, 3}, at::kByte)
      .permute({2, 0, 1})
      .clone();
}

}  // namespace

std::vector<std::array<int, 4>> parse_region_boxes(const std::string& text) {
  std::vector<std::array<int, 4>> boxes;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = std::min(text.find(';', start), text.size());
    const std::string box = text.substr(start, end - start);
    std::array<int, 4> b{};
    char tail = 0;
    SPARSESCOPE_CHECK(std::sscanf(box.c_str(), "%d,%d,%d,%d%c", &b[0], &b[1], &b[2], &b[3], &tail) == 4,
                      "box '", box, "' is not x1,y1,x2,y2");
    boxes.push_back(b);
    start = end + 1;
  }
  return boxes;
}

at::Tensor region_crops(const vision::Image& image, const std::vector<std::array<int, 4>>& boxes, int size) {
  std::vector<at::Tensor> crops;
  for (const auto& b : boxes) {
    const int x1 = std::clamp(b[0], 0, image.width), y1 = std::clamp(b[1], 0, image.height);
    const int x2 = std::clamp(b[2], 0, image.width), y2 = std::clamp(b[3], 0, image.height);
    if (x2 <= x1 || y2 <= y1) continue;
    vision::Image crop;
    crop.width = x2 - x1;
    crop.height = y2 - y1;
    crop.pixels.resize(crop.row_bytes() * static_cast<size_t>(crop.height));
    for (int y = 0; y < crop.height; ++y) {
      std::copy_n(image.pixel(x1, y1 + y), crop.row_bytes(), crop.pixel(0, y));
    }
    crops.push_back(to_chw(vision::resize(crop, size, size, vision::Interpolation::Bilinear)));
  }
  return crops.empty() ? at::empty({0, 3, size, size}, at::kByte) : at::stack(crops);
}

ImageTextPairs load_image_text_pairs(const std::string& tsv, const vision::EvalTransform& geometry, int64_t limit,
                                     const std::string& image_column, const std::string& caption_column,
                                     const std::string& boxes_column) {
  std::ifstream in(tsv, std::ios::binary);
  SPARSESCOPE_CHECK(in && fs::is_regular_file(tsv), tsv, ": cannot read the image-text pairs (a tab-separated file)");
  ImageTextPairs pairs;
  pairs.source = tsv;
  std::string line;
  SPARSESCOPE_CHECK(std::getline(in, line), tsv, ": empty (expected a header line naming the columns)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split_tabs(line);
  const size_t image_at = column(header, image_column, tsv), caption_at = column(header, caption_column, tsv);
  const size_t boxes_at = boxes_column.empty() ? header.size() : column(header, boxes_column, tsv);
  const fs::path base = fs::path(tsv).parent_path();
  std::map<std::string, int64_t> image_index;  // resolved path -> image, or -1 when unreadable
  std::vector<at::Tensor> images;
  for (int64_t number = 2; std::getline(in, line); ++number) {
    if (limit > 0 && static_cast<int64_t>(pairs.captions.size()) >= limit) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto fields = split_tabs(line);
    const std::string where = tsv + ":" + std::to_string(number);
    if (fields.size() != header.size()) {
      pairs.failures.emplace_back(where, std::to_string(fields.size()) + " columns, the header has " +
                                             std::to_string(header.size()));
      continue;
    }
    if (fields[caption_at].empty()) {
      pairs.failures.emplace_back(where, "empty caption");
      continue;
    }
    std::vector<std::array<int, 4>> boxes;
    if (boxes_at < header.size()) {
      try {
        boxes = parse_region_boxes(fields[boxes_at]);
      } catch (const Error& e) {
        pairs.failures.emplace_back(where, e.what());
        continue;
      }
    }
    fs::path file = fields[image_at];
    if (file.is_relative()) file = base / file;
    const std::string key = file.lexically_normal().string();
    auto it = image_index.find(key);
    if (it == image_index.end()) {
      int64_t index = -1;
      try {
        const vision::Image decoded = vision::read_image(key);
        images.push_back(to_chw(vision::eval_geometry(decoded, geometry)));
        if (boxes_at < header.size()) pairs.regions.push_back(region_crops(decoded, boxes, geometry.img_size));
        pairs.image_files.push_back(key);
        index = static_cast<int64_t>(images.size()) - 1;
      } catch (const Error& e) {
        pairs.failures.emplace_back(key, e.what());
      }
      it = image_index.emplace(key, index).first;
    }
    if (it->second < 0) continue;  // its image is unreadable (reported once)
    pairs.captions.push_back(fields[caption_at]);
    pairs.caption_image.push_back(it->second);
  }
  SPARSESCOPE_CHECK(!pairs.captions.empty(), tsv, ": no readable image-text pair (", pairs.failures.size(), " skipped)");
  pairs.images = at::stack(images);
  return pairs;
}

ZeroShotSet load_zero_shot_set(const std::string& dir, const vision::EvalTransform& geometry, int64_t limit) {
  vision::ViTConfig pixels;  // the image geometry only: vit_pixels through `geometry`
  pixels.img_size = geometry.img_size;
  pixels.patch_size = 1;
  pixels.eval = geometry;
  ZeroShotSet set{vision::load_dataset({false, dir}, vision::Split::Test, pixels, {}, limit), {}};
  for (std::string name : set.data.classes) {
    std::replace(name.begin(), name.end(), '_', ' ');
    set.classnames.push_back(name);
  }
  return set;
}

}  // namespace sparsescope::vlm
