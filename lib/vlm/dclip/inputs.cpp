#include "inputs.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm::detail {

DclipInputs dclip_inputs(CLIP& clip, const ClipTokenizer& tokenizer, const ImageTextPairs& pairs, int64_t batch) {
  SPARSESCOPE_CHECK(pairs.regions.size() == pairs.image_files.size(), pairs.source,
                    ": DCLIP needs region boxes (a boxes column) for every image");
  at::NoGradGuard no_grad;
  const auto device = clip->logit_scale().device();
  const int64_t E = clip->config().embed_dim;
  DclipInputs in;
  // Regions: every crop of every image through the image tower, `batch` at a time.
  int64_t most = 1;
  for (const auto& r : pairs.regions) most = std::max(most, r.size(0));
  const auto images = static_cast<int64_t>(pairs.regions.size());
  in.regions = at::zeros({images, most, E}, at::TensorOptions(device));
  in.region_valid = at::zeros({images, most}, at::TensorOptions(device).dtype(at::kBool));
  for (int64_t i = 0; i < images; ++i) {
    const at::Tensor& crops = pairs.regions[static_cast<size_t>(i)];
    if (crops.size(0) == 0) {
      in.region_valid[i][0] = true;  // upstream's zero vector for an image without detections
      continue;
    }
    for (int64_t c = 0; c < crops.size(0); c += batch) {
      const at::Tensor pixels = crops.slice(0, c, c + batch).to(device).to(at::kFloat).div_(255);
      const at::Tensor f = clip->encode_image(pixels).to(at::kFloat);
      in.regions[i].slice(0, c, c + f.size(0)).copy_(f);
    }
    in.region_valid[i].slice(0, 0, crops.size(0)).fill_(true);
  }
  // Tokens: positions 1 .. end-1 of each caption (no start, no end token), else the end token.
  in.ids = tokenizer.tokenize(pairs.captions, clip->config().context_length);
  const at::Tensor end = in.ids.argmax(1);  // the end-of-text position
  const int64_t length = std::max<int64_t>(1, end.max().item<int64_t>() - 1);
  const auto captions = static_cast<int64_t>(pairs.captions.size());
  in.tokens = at::zeros({captions, length, E}, at::TensorOptions(device));
  in.token_valid = at::zeros({captions, length}, at::TensorOptions(device).dtype(at::kBool));
  std::vector<at::Tensor> texts;
  for (int64_t t = 0; t < captions; t += batch) {
    const at::Tensor ids = in.ids.slice(0, t, t + batch).to(device);
    const at::Tensor features = clip->text_token_features(ids).to(at::kFloat);  // [b, context, E]
    texts.push_back(clip->encode_text(ids).to(at::kFloat));
    for (int64_t k = 0; k < ids.size(0); ++k) {
      const int64_t e = end[t + k].item<int64_t>();
      if (e >= 2) {
        in.tokens[t + k].slice(0, 0, e - 1).copy_(features[k].slice(0, 1, e));
        in.token_valid[t + k].slice(0, 0, e - 1).fill_(true);
      } else {
        in.tokens[t + k][0].copy_(features[k][e]);
        in.token_valid[t + k][0] = true;
      }
    }
  }
  in.text = at::cat(texts);
  return in;
}

at::Tensor pick_captions(const at::Tensor& images, const std::vector<std::vector<int64_t>>& captions_of, at::Generator* gen,
                         at::Device device) {
  const at::Tensor items = images.to(at::kCPU);
  const int64_t count = items.size(0);
  const at::Tensor u = gen ? at::rand({count}, *gen, at::kDouble) : at::zeros({count}, at::kDouble);
  std::vector<int64_t> picked(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    const auto& list = captions_of[static_cast<size_t>(items[i].item<int64_t>())];
    const auto k = std::min(list.size() - 1, static_cast<size_t>(u[i].item<double>() * static_cast<double>(list.size())));
    picked[static_cast<size_t>(i)] = list[k];
  }
  return at::tensor(picked, at::kLong).to(device);
}

}  // namespace sparsescope::vlm::detail
