// open_clip's CLIP: the image tower (visual.h), then the text side as registered in CLIP.__init__
// (transformer, token_embedding, positional_embedding, ln_final, text_projection, logit_scale) with
// _encode_text's end-of-text pooling (the largest id).
#include "sparsescope/vlm/clip.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/module_weights.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/state_dict.h"
#include "transformer.h"
#include "visual.h"

namespace sparsescope::vlm {

namespace nn = torch::nn;

namespace {

// open_clip's model_configs/*.json (vision heads = width / head_width 64), and ours.
const std::map<std::string, ClipConfig>& configs() {
  static const std::map<std::string, ClipConfig> table = [] {
    std::map<std::string, ClipConfig> t;
    auto add = [&t](ClipConfig c) {
      t[c.name] = c;
      c.name += "-quickgelu";
      c.quick_gelu = true;
      t[c.name] = c;
    };
    auto config = [](const std::string& name, int64_t embed, int64_t image, int64_t patch, int64_t vwidth,
                     int64_t vlayers, int64_t twidth, int64_t theads, int64_t tlayers) {
      ClipConfig c;
      c.name = name;
      c.embed_dim = embed;
      c.image_size = image;
      c.patch_size = patch;
      c.vision_width = vwidth;
      c.vision_heads = vwidth / 64;
      c.vision_layers = vlayers;
      c.text_width = twidth;
      c.text_heads = theads;
      c.text_layers = tlayers;
      return c;
    };
    add(config("ViT-B-32", 512, 224, 32, 768, 12, 512, 8, 12));
    add(config("ViT-B-16", 512, 224, 16, 768, 12, 512, 8, 12));
    add(config("ViT-L-14", 768, 224, 14, 1024, 24, 768, 12, 12));
    // Ours: 64 x 64 images in 8 x 8 patches (CIFAR-10 upsampled, photos downsampled), 6 + 6 layers,
    // small enough to bundle (10.3 M parameters, 6.3 M of them the token embedding).
    add(config("clip_tiny", 128, 64, 8, 192, 6, 128, 2, 6));
    return t;
  }();
  return table;
}

}  // namespace

std::vector<std::string> clip_config_names() {
  std::vector<std::string> names;
  for (const auto& [name, c] : configs()) names.push_back(name);
  return names;
}

ClipConfig clip_config(const std::string& name) {
  const auto it = configs().find(name);
  if (it != configs().end()) return it->second;
  std::string known;
  for (const auto& n : clip_config_names()) known += (known.empty() ? "" : ", ") + n;
  SPARSESCOPE_FAIL("unknown CLIP configuration '", name, "' (known: ", known, ")");
}

vision::EvalTransform clip_eval_transform(const ClipConfig& config) {
  vision::EvalTransform t;
  t.img_size = static_cast<int>(config.image_size);
  t.crop_pct = 1.0;
  t.interpolation = vision::Interpolation::Bicubic;
  t.mean = kOpenAiMean;
  t.std = kOpenAiStd;
  return t;
}

CLIPImpl::CLIPImpl(ClipConfig config) : config_(std::move(config)) {
  const ClipConfig& c = config_;
  SPARSESCOPE_CHECK(c.text_width % c.text_heads == 0 && c.context_length >= 2 && c.vocab_size > 0 && c.embed_dim > 0,
                    "CLIP ", c.name, ": impossible text configuration (width ", c.text_width, ", heads ", c.text_heads, ")");
  SPARSESCOPE_CHECK(c.vision_width % c.vision_heads == 0 && c.patch_size > 0 && c.image_size % c.patch_size == 0,
                    "CLIP ", c.name, ": impossible image configuration (width ", c.vision_width, ", heads ",
                    c.vision_heads, ", image ", c.image_size, ", patch ", c.patch_size, ")");
  visual_ = register_module("visual", std::make_shared<ClipVisionImpl>(c));
  transformer_ = register_module("transformer", std::make_shared<ClipTransformerImpl>(TransformerShape{
                                                    c.text_width, c.text_heads, c.text_layers, c.text_mlp_ratio,
                                                    c.quick_gelu, /*causal=*/true}));
  token_embedding_ = register_module("token_embedding", nn::Embedding(c.vocab_size, c.text_width));
  positional_embedding_ = register_parameter("positional_embedding", at::empty({c.context_length, c.text_width}));
  ln_final_ = register_module("ln_final", nn::LayerNorm(nn::LayerNormOptions({c.text_width}).eps(1e-5)));
  text_projection_ = register_parameter("text_projection", at::empty({c.text_width, c.embed_dim}));
  logit_scale_ = register_parameter("logit_scale", at::full({}, std::log(1.0 / 0.07)));
  // TextTransformer.init_parameters.
  at::NoGradGuard no_grad;
  token_embedding_->weight.normal_(0, 0.02);
  positional_embedding_.normal_(0, 0.01);
  transformer_->init_text_blocks();
  text_projection_.normal_(0, std::pow(static_cast<double>(c.text_width), -0.5));
}

namespace {
at::Tensor normalized(const at::Tensor& features, bool normalize) {
  return normalize ? features / at::linalg_vector_norm(features, 2, {-1}, true).clamp_min(1e-12) : features;
}
}  // namespace

at::Tensor CLIPImpl::encode_image(const at::Tensor& images, bool normalize, vision::ProbeSet* probes) {
  return normalized(visual_->forward(images, probes).first, normalize);
}

namespace {
at::Tensor check_ids(const at::Tensor& ids, const ClipConfig& c) {
  SPARSESCOPE_CHECK(ids.dim() == 2 && ids.size(1) == c.context_length && ids.scalar_type() == at::kLong, "CLIP ",
                    c.name, ": expected int64 token ids [B, ", c.context_length, "], got ", ids.scalar_type(), " ",
                    ids.sizes());
  return ids;
}
}  // namespace

at::Tensor CLIPImpl::encode_text(const at::Tensor& ids, bool normalize, vision::ProbeSet* probes) {
  at::Tensor x = token_embedding_->forward(check_ids(ids, config_)) + positional_embedding_;
  x = ln_final_->forward(transformer_->forward(x, probes, "transformer."));
  const at::Tensor eot = ids.argmax(-1).view({-1, 1, 1}).expand({x.size(0), 1, x.size(2)});  // the end-of-text token
  return normalized(at::matmul(x.gather(1, eot).squeeze(1), text_projection_), normalize);
}

at::Tensor CLIPImpl::text_token_features(const at::Tensor& ids, vision::ProbeSet* probes) {
  const at::Tensor x = token_embedding_->forward(check_ids(ids, config_)) + positional_embedding_;
  return at::matmul(ln_final_->forward(transformer_->forward(x, probes, "transformer.")), text_projection_);
}

void load_clip_weights(CLIP& model, const std::string& path) {
  vision::NamedTensors loaded = vision::load_state_dict(path);
  const bool data_parallel = !loaded.empty() && loaded.front().first.rfind("module.", 0) == 0;
  std::vector<std::pair<std::string, at::Tensor>> weights;
  for (auto& [name, tensor] : loaded) {
    std::string key = data_parallel && name.rfind("module.", 0) == 0 ? name.substr(7) : name;
    if (key == "input_resolution" || key == "context_length" || key == "vocab_size") continue;
    weights.emplace_back(std::move(key), std::move(tensor));
  }
  vision::assign_weights(*model, weights, path);
}

std::string clip_config_json(const ClipConfig& c) {
  return nlohmann::json{{"name", c.name},
                        {"embed_dim", c.embed_dim},
                        {"image_size", c.image_size},
                        {"patch_size", c.patch_size},
                        {"vision_width", c.vision_width},
                        {"vision_heads", c.vision_heads},
                        {"vision_layers", c.vision_layers},
                        {"vision_mlp_ratio", c.vision_mlp_ratio},
                        {"context_length", c.context_length},
                        {"vocab_size", c.vocab_size},
                        {"text_width", c.text_width},
                        {"text_heads", c.text_heads},
                        {"text_layers", c.text_layers},
                        {"text_mlp_ratio", c.text_mlp_ratio},
                        {"quick_gelu", c.quick_gelu}}
      .dump();
}

ClipConfig parse_clip_config_json(const std::string& text, const std::string& source) {
  const std::string what = source + ": CLIP card (" + kClipCardKey + ")";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    SPARSESCOPE_FAIL(what, " is not JSON: ", e.what());
  }
  SPARSESCOPE_CHECK(j.is_object(), what, " is not a JSON object");
  ClipConfig c;
  auto read = [&](const char* key, auto& field) {
    SPARSESCOPE_CHECK(j.contains(key), what, ": key '", key, "' is missing");
    try {
      field = j.at(key).get<std::decay_t<decltype(field)>>();
    } catch (const nlohmann::json::exception&) {
      SPARSESCOPE_FAIL(what, ": key '", key, "' has the wrong type: ", j.at(key).dump());
    }
  };
  read("name", c.name);
  read("embed_dim", c.embed_dim);
  read("image_size", c.image_size);
  read("patch_size", c.patch_size);
  read("vision_width", c.vision_width);
  read("vision_heads", c.vision_heads);
  read("vision_layers", c.vision_layers);
  read("vision_mlp_ratio", c.vision_mlp_ratio);
  read("context_length", c.context_length);
  read("vocab_size", c.vocab_size);
  read("text_width", c.text_width);
  read("text_heads", c.text_heads);
  read("text_layers", c.text_layers);
  read("text_mlp_ratio", c.text_mlp_ratio);
  read("quick_gelu", c.quick_gelu);
  SPARSESCOPE_CHECK(c.embed_dim > 0 && c.image_size > 0 && c.patch_size > 0 && c.vision_width > 0 && c.vision_heads > 0 &&
                        c.vision_layers > 0 && c.context_length > 1 && c.vocab_size > 0 && c.text_width > 0 &&
                        c.text_heads > 0 && c.text_layers > 0 && c.vision_mlp_ratio > 0 && c.text_mlp_ratio > 0,
                    what, ": sizes must be positive");
  return c;
}

CLIP load_clip(const std::string& weights, const std::string& name) {
  ClipConfig config;
  if (!name.empty()) {
    config = clip_config(name);
  } else {
    SPARSESCOPE_CHECK(std::filesystem::is_regular_file(weights), weights, ": no such file");
    SPARSESCOPE_CHECK(!vision::is_torch_save(weights), weights,
                      ": a torch.save file has no model card; name its configuration (one of open_clip's, e.g. ViT-B-32)");
    const auto metadata = vision::load_safetensors(weights).metadata;
    const auto card = metadata.find(kClipCardKey);
    SPARSESCOPE_CHECK(card != metadata.end(), weights, ": no CLIP card (", kClipCardKey,
                      "); name its configuration (one of open_clip's, e.g. ViT-B-32)");
    config = parse_clip_config_json(card->second, weights);
  }
  CLIP model(config);
  load_clip_weights(model, weights);
  model->eval();
  return model;
}

}  // namespace sparsescope::vlm
