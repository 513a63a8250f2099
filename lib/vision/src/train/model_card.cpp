#include "sparsescope/vision/model_card.h"

#include <nlohmann/json.hpp>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/registry.h"
#include "sparsescope/vision/resample.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/state_dict.h"

namespace sparsescope::vision {

namespace {

using nlohmann::json;

json eval_to_json(const EvalTransform& e) {
  return {{"img_size", e.img_size},
          {"crop_pct", e.crop_pct},
          {"interpolation", to_string(e.interpolation)},
          {"mean", e.mean},
          {"std", e.std}};
}

EvalTransform eval_from_json(const json& j) {
  EvalTransform e;
  e.img_size = j.at("img_size").get<int>();
  e.crop_pct = j.at("crop_pct").get<double>();
  e.interpolation = parse_interpolation(j.at("interpolation").get<std::string>());
  e.mean = j.at("mean").get<std::array<float, 3>>();
  e.std = j.at("std").get<std::array<float, 3>>();
  return e;
}

// The card's policy: "attention" names it and the key of the same name holds its options. Cards
// written before the registry name no policy; one of theirs is the key named after it.
AttentionSpec attention_from_json(const json& card) {
  std::string policy;
  if (card.contains("attention")) {
    policy = card.at("attention").get<std::string>();
  } else {
    for (const auto& name : attention_policy_names()) {
      if (name != kDensePolicy && card.contains(name)) policy = name;
    }
  }
  if (policy.empty() || policy == kDensePolicy) return {};
  SPARSESCOPE_CHECK(card.contains(policy), "attention policy '", policy, "' without its options (key '", policy, "')");
  return attention_spec(policy, card.at(policy).dump());
}


}  // namespace

std::map<std::string, std::string> model_card_metadata(const ModelCard& card) {
  const ViTConfig& c = card.config;
  json j = {{"name", c.name},
                  {"img_size", c.img_size},
                  {"patch_size", c.patch_size},
                  {"in_chans", c.in_chans},
                  {"embed_dim", c.embed_dim},
                  {"depth", c.depth},
                  {"num_heads", c.num_heads},
                  {"mlp_ratio", c.mlp_ratio},
                  {"qkv_bias", c.qkv_bias},
                  {"num_classes", c.num_classes},
                  {"distilled", c.distilled},
                  {"norm_eps", c.norm_eps},
                  {"eval", eval_to_json(c.eval)},
                  {"classes", card.classes}};
  if (c.global_pool) j["global_pool"] = true;  // class-token cards stay as they were
  if (c.head_norm) j["head_norm"] = true;
  if (c.attention.policy != kDensePolicy) {  // dense cards stay as they were before policies
    j["attention"] = c.attention.policy;
    j[c.attention.policy] = json::parse(c.attention.options);
  }
  return {{kModelCardKey, j.dump()}};
}

std::optional<ModelCard> parse_model_card(const std::map<std::string, std::string>& metadata,
                                          const std::string& source) {
  const auto it = metadata.find(kModelCardKey);
  if (it == metadata.end()) return std::nullopt;
  ModelCard card;
  try {
    const json j = json::parse(it->second);
    ViTConfig& c = card.config;
    c.name = j.at("name").get<std::string>();
    c.img_size = j.at("img_size").get<int64_t>();
    c.patch_size = j.at("patch_size").get<int64_t>();
    c.in_chans = j.at("in_chans").get<int64_t>();
    c.embed_dim = j.at("embed_dim").get<int64_t>();
    c.depth = j.at("depth").get<int64_t>();
    c.num_heads = j.at("num_heads").get<int64_t>();
    c.mlp_ratio = j.at("mlp_ratio").get<double>();
    c.qkv_bias = j.at("qkv_bias").get<bool>();
    c.num_classes = j.at("num_classes").get<int64_t>();
    c.distilled = j.at("distilled").get<bool>();
    c.norm_eps = j.at("norm_eps").get<double>();
    c.global_pool = j.value("global_pool", false);
    c.head_norm = j.value("head_norm", false);
    c.eval = eval_from_json(j.at("eval"));
    card.classes = j.at("classes").get<std::vector<std::string>>();
    c.attention = attention_from_json(j);
  } catch (const json::exception& e) {
    SPARSESCOPE_FAIL("'", source, "': malformed ", kModelCardKey, " metadata: ", e.what());
  } catch (const Error& e) {
    SPARSESCOPE_FAIL("'", source, "': malformed ", kModelCardKey, " metadata: ", e.what());
  }
  const ViTConfig& c = card.config;
  SPARSESCOPE_CHECK(c.img_size > 0 && c.patch_size > 0 && c.img_size % c.patch_size == 0 && c.embed_dim > 0 &&
                        c.depth > 0 && c.num_heads > 0 && c.embed_dim % c.num_heads == 0 && c.num_classes >= 0 &&
                        c.mlp_ratio > 0,
                    "'", source, "': ", kModelCardKey, " describes an impossible model (img_size ", c.img_size,
                    ", patch_size ", c.patch_size, ", embed_dim ", c.embed_dim, ", depth ", c.depth, ", num_heads ",
                    c.num_heads, ", num_classes ", c.num_classes, ")");
  SPARSESCOPE_CHECK(card.classes.empty() || static_cast<int64_t>(card.classes.size()) == c.num_classes, "'", source,
                    "': ", kModelCardKey, " names ", card.classes.size(), " classes for a model of ", c.num_classes);
  return card;
}

std::optional<ModelCard> read_model_card(const std::string& path) {
  if (is_torch_save(path)) return std::nullopt;  // a .pth has no safetensors metadata
  return parse_model_card(load_safetensors(path).metadata, path);
}

LoadedViT load_vit(const std::string& weights, const std::string& name) {
  const std::optional<ModelCard> card = read_model_card(weights);
  SPARSESCOPE_CHECK(!name.empty() || card, "weights '", weights, "' carry no ", kModelCardKey,
                    " metadata to build the model from; name the model (--model)");
  LoadedViT loaded;
  ViTConfig config = name.empty() ? card->config : vit_config(name);
  if (card) config.attention = card->config.attention;  // the weights hold the policy's parameters
  loaded.model = VisionTransformer(config);
  if (card) loaded.classes = card->classes;
  load_vit_weights(loaded.model, weights);
  loaded.model->eval();
  return loaded;
}

}  // namespace sparsescope::vision
