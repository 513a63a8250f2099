// The registries as a new method meets them: a policy registered from this file alone ("keep a
// random subset of keys") is listed, stored in a model card, loaded by the applications' pipeline
// (load_model), evaluated, counted and recorded, without any generic code naming it.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/evaluate.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/train_task.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;
using nlohmann::json;

namespace {

constexpr const char* kPolicy = "test-random-keep";

// Each query keeps `kept` keys drawn from a generator seeded by `seed` (the same keys every call).
class RandomKeepImpl : public sv::AttentionPolicyImpl {
 public:
  RandomKeepImpl(const sv::AttentionSiteShape& site, int64_t kept, uint64_t seed) : kept_(kept) {
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    index_ = at::rand({1, site.num_heads, site.tokens, site.tokens}, gen).argsort(/*stable=*/false, /*dim=*/-1, /*descending=*/false).narrow(-1, 0, kept);
  }
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, sparsescope::Probe* probe) override {
    return sparsescope::attend(q, k, v, sparsescope::TopK{index_.to(q.device()), std::nullopt}, probe);
  }
  void count_flops(const sv::AttentionSiteShape& site, sv::MhsaFlops& flops) override {
    flops.attention += 2.0 * static_cast<double>(site.tokens * kept_ * site.head_dim * site.num_heads);
  }

 private:
  int64_t kept_;
  at::Tensor index_;  // [1, H, N, kept]
};

std::string normalize(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  SPARSESCOPE_CHECK(j.is_object(), "options are not an object");
  const json out = {{"kept", j.value("kept", 4)}, {"seed", j.value("seed", 0)}};
  SPARSESCOPE_CHECK(out["kept"].get<int64_t>() >= 1, "kept must be at least 1");
  return out.dump();
}

void register_test_policy() {
  static const bool once = [] {
    sv::register_attention_policy(
        {kPolicy, "test only: each query keeps a random subset of keys", "", {{"kept", "4", "keys per query"},
                                                                             {"seed", "0", "which keys"}},
         normalize, [](const sv::AttentionSiteShape& site, const std::string& options) {
           const json o = json::parse(options);
           return std::make_shared<RandomKeepImpl>(site, o["kept"].get<int64_t>(), o["seed"].get<uint64_t>());
         }});
    return true;
  }();
  (void)once;
}

sv::ViTConfig tiny_config() {
  sv::ViTConfig c;
  c.name = "vit_test_registry";
  c.img_size = 8;
  c.patch_size = 2;
  c.in_chans = 1;
  c.embed_dim = 16;
  c.depth = 2;
  c.num_heads = 2;
  c.num_classes = 2;
  c.eval.img_size = 8;
  c.eval.crop_pct = 1.0;
  c.attention = sv::attention_spec(kPolicy, R"({"kept": 5})");
  return c;
}

using RegistryPipeline = sparsescope::test::TempDirTest;

}  // namespace

TEST(Registry, ListsEveryEntryWithItsOptions) {
  register_test_policy();
  const json all = json::parse(sv::registry_json());
  std::map<std::string, json> policies;
  for (const auto& p : all["attention_policies"]) policies[p["name"].get<std::string>()] = p;
  ASSERT_TRUE(policies.count(sv::kDensePolicy));
  ASSERT_TRUE(policies.count(kPolicy));
  EXPECT_EQ(policies[kPolicy]["options"][0]["name"], "kept");
  EXPECT_EQ(policies[kPolicy]["options"][0]["default"], 4);
  bool vit = false;
  for (const auto& m : all["models"]) vit = vit || m["name"] == "vit";
  EXPECT_TRUE(vit);
  EXPECT_EQ(sv::train_task(sv::kClassifyTask).name, sv::kClassifyTask);
  EXPECT_THROW(sv::attention_policy("no-such-policy"), sparsescope::Error);
  EXPECT_THROW(sv::attention_spec(kPolicy, R"({"kept": 0})"), sparsescope::Error);
  EXPECT_THROW(sv::register_attention_policy(sv::attention_policy(kPolicy)), sparsescope::Error) << "a name twice";
}

TEST_F(RegistryPipeline, ATestPolicyRunsThroughCardLoadingEvaluationFlopsAndRecording) {
  register_test_policy();
  const sv::ViTConfig config = tiny_config();
  EXPECT_EQ(config.attention.options, R"({"kept":5,"seed":0})") << "options are normalised";
  at::manual_seed(0);
  sv::VisionTransformer model(config);
  sv::NamedTensors weights;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) weights.emplace_back(item.key(), item.value());
  const std::string path = (dir_ / "model.safetensors").string();
  sv::save_safetensors(path, weights, sv::model_card_metadata({config, {"a", "b"}}));

  // The card brings the policy back, and the pipeline of the applications runs it by default.
  sv::ModelSpec spec;
  spec.weights = path;
  sv::LoadedModel loaded = sv::load_model(spec);
  EXPECT_EQ(loaded.method, kPolicy);
  EXPECT_EQ(loaded.model->config().attention.options, config.attention.options);
  EXPECT_EQ(sv::attention_methods(loaded.model->config()), (std::vector<std::string>{sv::kDensePolicy, kPolicy}));

  sv::ImageDataset data;
  data.images = at::randint(0, 256, {6, 1, 8, 8}, at::kLong).to(at::kByte);
  data.labels = at::arange(6, at::kLong).remainder(2);
  data.classes = {"a", "b"};
  data.source = "noise";
  const sv::EvalResult result = sv::evaluate(loaded.model, data);
  EXPECT_EQ(result.images, 6);

  const double N = 17, d = 16;
  EXPECT_DOUBLE_EQ(sv::mhsa_flops(loaded.model).attention, 2 * (2 * N * 5 * d));
  EXPECT_DOUBLE_EQ(sv::mhsa_flops(loaded.model, /*dense=*/true).attention, 2 * (2 * N * N * d));

  sv::Recorder recorder;
  const at::Tensor x = at::randn({1, 1, 8, 8});
  at::Tensor sparse_logits;
  {
    c10::NoGradGuard no_grad;
    sparse_logits = loaded.model->forward(x, &recorder);
  }
  const auto traces = recorder.take();
  ASSERT_EQ(traces.size(), 1u);
  ASSERT_EQ(traces[0].sites.size(), 2u);
  EXPECT_EQ(traces[0].sites[0].pattern, "topk");
  EXPECT_TRUE(traces[0].sites[0].mask.sum(-1).eq(5).all().item<bool>()) << "5 keys per query";

  sv::use_attention_method(loaded.model, sv::kDensePolicy);
  EXPECT_EQ(sv::attention_method(loaded.model), sv::kDensePolicy);
  c10::NoGradGuard no_grad;
  EXPECT_FALSE(at::allclose(loaded.model->forward(x), sparse_logits)) << "dense attention sees every key";
  spec.method = "no-such-method";
  EXPECT_THROW(sv::load_model(spec), sparsescope::Error);
}

TEST(Registry, ACardNamingAnUnknownPolicyIsAClearError) {
  register_test_policy();
  sv::ViTConfig config = tiny_config();
  auto metadata = sv::model_card_metadata({config, {}});
  json card = json::parse(metadata.at(sv::kModelCardKey));
  card["attention"] = "bigbird";
  card["bigbird"] = json::object();
  metadata[sv::kModelCardKey] = card.dump();
  try {
    sv::parse_model_card(metadata, "card.safetensors");
    FAIL() << "an unknown policy was accepted";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bigbird"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("card.safetensors"), std::string::npos) << e.what();
  }
}
