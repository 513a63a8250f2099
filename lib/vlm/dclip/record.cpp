#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "inputs.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/resample.h"
#include "sparsescope/vlm/dclip_trace.h"

namespace sparsescope::vlm {

namespace {

// The caption's tokens between start and end as text, one word piece each.
std::vector<std::string> token_texts(const ClipTokenizer& tokenizer, const at::Tensor& ids) {
  std::vector<std::string> words;
  const int64_t end = ids.argmax(0).item<int64_t>();
  for (int64_t i = 1; i < end; ++i) {
    std::string w = tokenizer.decode({ids[i].item<int64_t>()});
    while (!w.empty() && w.back() == ' ') w.pop_back();
    words.push_back(w);
  }
  return words;
}

}  // namespace

vision::Trace record_dclip_teacher(CLIP& clip, DclipTeacher& teacher, const ClipTokenizer& tokenizer,
                                   const vision::Image& image, const std::vector<std::array<int, 4>>& boxes,
                                   const std::string& caption, const std::string& input, int max_side) {
  SPARSESCOPE_CHECK(!boxes.empty(), input, ": no region boxes (the teacher attends between the caption and regions)");
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    const bool inside = std::max(b[0], 0) < std::min(b[2], image.width) && std::max(b[1], 0) < std::min(b[3], image.height);
    SPARSESCOPE_CHECK(inside, input, ": box ", i + 1, " (", b[0], ",", b[1], ",", b[2], ",", b[3],
                      ") is empty or outside the ", image.width, "x", image.height, " image");
  }
  SPARSESCOPE_CHECK(teacher->config().embed_dim == clip->config().embed_dim, "the DCLIP teacher is ",
                    teacher->config().embed_dim, " wide, CLIP's embedding ", clip->config().embed_dim,
                    " (a teacher trained on another CLIP)");
  const at::Tensor ids = tokenizer.tokenize({caption}, clip->config().context_length);
  const std::vector<std::string> words = token_texts(tokenizer, ids[0]);
  SPARSESCOPE_CHECK(!words.empty(), "caption '", caption, "' has no token");

  at::NoGradGuard no_grad;
  const auto size = static_cast<int>(clip->config().image_size);
  const at::Tensor regions = detail::region_features(clip, region_crops(image, boxes, size), 64).unsqueeze(0);
  const detail::CaptionTokens text = detail::caption_tokens(clip, ids, static_cast<int64_t>(words.size()));
  vision::RecorderOptions options;
  options.compare_dense = false;
  vision::Recorder recorder(options);
  teacher->forward(text.tokens, regions, text.valid, {}, &recorder);
  vision::Trace trace = std::move(recorder.take().front());
  for (auto& site : trace.sites) {
    site.from = site.name == "cross_modal_attention.text_to_image" ? vision::kCrossText : vision::kCrossRegion;
  }

  trace.info.model = "dclip_teacher";
  trace.info.method = "dense";
  trace.info.input = input;
  auto& layout = trace.info.layout;
  layout.kind = vision::kCrossLayout;
  layout.words = words;
  const double scale = std::min(1.0, static_cast<double>(max_side) / std::max(image.width, image.height));
  const int width = std::max(1, static_cast<int>(std::lround(image.width * scale)));
  const int height = std::max(1, static_cast<int>(std::lround(image.height * scale)));
  for (const auto& b : boxes) {
    const auto clip_to = [&](int v, int extent) { return static_cast<float>(std::clamp(v, 0, extent) * scale); };
    layout.regions.push_back({clip_to(b[0], image.width), clip_to(b[1], image.height), clip_to(b[2], image.width),
                              clip_to(b[3], image.height)});
  }
  const auto w = static_cast<int64_t>(words.size());
  layout.segments = {{"text", 0, w}, {"region", w, w + static_cast<int64_t>(boxes.size())}};
  const vision::Image shown =
      scale < 1 ? vision::resize(image, width, height, vision::Interpolation::Bilinear) : image;
  trace.image = vision::image_to_tensor(shown);
  return trace;
}

}  // namespace sparsescope::vlm
