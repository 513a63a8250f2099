#include "inputs.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <vector>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vlm::detail {

at::Tensor region_features(CLIP& clip, const at::Tensor& crops, int64_t batch) {
  at::NoGradGuard no_grad;
  const auto device = clip->logit_scale().device();
  std::vector<at::Tensor> features;
  for (int64_t c = 0; c < crops.size(0); c += batch) {
    const at::Tensor pixels = crops.slice(0, c, c + batch).to(device).to(at::kFloat).div_(255);
    features.push_back(clip->encode_image(pixels).to(at::kFloat));
  }
  return features.empty() ? at::zeros({0, clip->config().embed_dim}, at::TensorOptions(device)) : at::cat(features);
}

CaptionTokens caption_tokens(CLIP& clip, const at::Tensor& ids, int64_t length) {
  at::NoGradGuard no_grad;
  const auto device = clip->logit_scale().device();
  const at::Tensor on_device = ids.to(device);
  const at::Tensor features = clip->text_token_features(on_device).to(at::kFloat);  // [b, context, E]
  const at::Tensor end = ids.argmax(1).cpu();  // the end-of-text position
  const int64_t count = ids.size(0);
  CaptionTokens out{at::zeros({count, length, clip->config().embed_dim}, at::TensorOptions(device)),
                    at::zeros({count, length}, at::TensorOptions(device).dtype(at::kBool))};
  for (int64_t k = 0; k < count; ++k) {
    const int64_t e = end[k].item<int64_t>();
    if (e >= 2) {
      const int64_t n = std::min(e - 1, length);
      out.tokens[k].slice(0, 0, n).copy_(features[k].slice(0, 1, 1 + n));
      out.valid[k].slice(0, 0, n).fill_(true);
    } else {
      out.tokens[k][0].copy_(features[k][e]);
      out.valid[k][0] = true;
    }
  }
  return out;
}

DclipInputs dclip_inputs(CLIP& clip, const ClipTokenizer& tokenizer, const ImageTextPairs& pairs, int64_t batch) {
  SPARSESCOPE_CHECK(pairs.regions.size() == pairs.image_files.size(), pairs.source,
                    ": DCLIP needs region boxes (a boxes column) for every image");
  at::NoGradGuard no_grad;
  const auto device = clip->logit_scale().device();
  const int64_t E = clip->config().embed_dim;
  DclipInputs in;
  // Regions: every crop of every image through the image tower.
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
    in.regions[i].slice(0, 0, crops.size(0)).copy_(region_features(clip, crops, batch));
    in.region_valid[i].slice(0, 0, crops.size(0)).fill_(true);
  }
  // Tokens: positions 1 .. end-1 of each caption (no start, no end token), else the end token.
  in.ids = tokenizer.tokenize(pairs.captions, clip->config().context_length);
  const int64_t length = std::max<int64_t>(1, in.ids.argmax(1).max().item<int64_t>() - 1);
  const auto captions = static_cast<int64_t>(pairs.captions.size());
  std::vector<at::Tensor> texts, tokens, valid;
  for (int64_t t = 0; t < captions; t += batch) {
    const at::Tensor ids = in.ids.slice(0, t, t + batch);
    CaptionTokens c = caption_tokens(clip, ids, length);
    tokens.push_back(c.tokens);
    valid.push_back(c.valid);
    texts.push_back(clip->encode_text(ids.to(device)).to(at::kFloat));
  }
  in.tokens = at::cat(tokens);
  in.token_valid = at::cat(valid);
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
