#include <map>
#include <nlohmann/json.hpp>

#include "../src/json_field.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/dlgsanet.h"

namespace sparsescope::vision {

namespace {

// options/DLGSANet_SISR/*.yml: sizes, and the TLC kernel per scale (the training LR patch is 48).
const std::map<std::string, std::array<int64_t, 3>>& sizes() {
  static const std::map<std::string, std::array<int64_t, 3>> table = {
      {"tiny", {48, 3, 3}}, {"light", {48, 4, 3}}, {"large", {90, 6, 4}}};  // dim, groups, blocks
  return table;
}

}  // namespace

std::vector<std::string> dlgsanet_config_names() {
  std::vector<std::string> names;
  for (const std::string size : {"tiny", "light", "large"}) {
    for (const char* scale : {"x2", "x3", "x4"}) names.push_back("dlgsanet_" + size + "_" + scale);
  }
  return names;
}

DlgsaConfig dlgsanet_config(const std::string& name) {
  for (const auto& [size, shape] : sizes()) {
    for (const int64_t scale : {2, 3, 4}) {
      if (name != "dlgsanet_" + size + "_x" + std::to_string(scale)) continue;
      DlgsaConfig c;
      c.name = name;
      c.scale = scale;
      c.dim = shape[0];
      c.groups = shape[1];
      c.blocks = shape[2];
      c.tlc_kernel = scale == 2 ? 96 : scale == 3 ? 72 : 48;
      return c;
    }
  }
  std::string known;
  for (const auto& n : dlgsanet_config_names()) known += (known.empty() ? "" : ", ") + n;
  SPARSESCOPE_FAIL("unknown DLGSANet configuration '", name, "' (known: ", known, ")");
}

std::string dlgsanet_config_json(const DlgsaConfig& c) {
  return nlohmann::json{{"name", c.name},
                        {"scale", c.scale},
                        {"dim", c.dim},
                        {"groups", c.groups},
                        {"blocks", c.blocks},
                        {"group_channels", c.group_channels},
                        {"kernel_size", c.kernel_size},
                        {"attention_heads", c.attention_heads},
                        {"ffn_expansion", c.ffn_expansion},
                        {"img_range", c.img_range},
                        {"mean", c.mean},
                        {"tlc_kernel", c.tlc_kernel},
                        {"tlc", c.tlc}}
      .dump();
}

DlgsaConfig dlgsanet_config_from_json(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  SPARSESCOPE_CHECK(j.is_object(), "DLGSANet model card: not a JSON object");
  DlgsaConfig c;
  auto get = [&j](const char* key, auto& field) { detail::json_field(j, key, field, "DLGSANet model card"); };
  get("name", c.name);
  get("scale", c.scale);
  get("dim", c.dim);
  get("groups", c.groups);
  get("blocks", c.blocks);
  get("group_channels", c.group_channels);
  get("kernel_size", c.kernel_size);
  get("attention_heads", c.attention_heads);
  get("ffn_expansion", c.ffn_expansion);
  get("img_range", c.img_range);
  get("mean", c.mean);
  get("tlc_kernel", c.tlc_kernel);
  get("tlc", c.tlc);
  SPARSESCOPE_CHECK(c.scale >= 1 && c.dim > 0 && c.groups > 0 && c.blocks > 0 && c.group_channels > 0 &&
                        c.dim % c.group_channels == 0 && c.kernel_size % 2 == 1 && c.attention_heads > 0 &&
                        c.dim % c.attention_heads == 0 && c.tlc_kernel > 0,
                    "DLGSANet model card: inconsistent sizes ", text);
  return c;
}

}  // namespace sparsescope::vision
