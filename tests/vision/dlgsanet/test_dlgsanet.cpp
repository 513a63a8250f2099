// DLGSANet against the official dlgsanet_arch.py (fixtures from scripts/fixtures/make_dlgsanet_fixtures.py):
// parameter names and counts of all nine official configurations, the SR output in training mode
// (global sparse attention) and in eval mode with TLC, within 1e-5 in float32 on the CPU; and what
// the network hands the recording seam.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <vector>
#include <string>

#include <ATen/CPUGeneratorImpl.h>

#include <tuple>

#include "sparsescope/kernels/dynamic_conv.h"
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/probe_set.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/safetensors.h"
#include "sine_weights.h"

namespace sv = sparsescope::vision;

namespace {

const sv::SafetensorsFile& fixture() {
  static const sv::SafetensorsFile file =
      sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/dlgsanet/dlgsanet.safetensors");
  return file;
}

at::Tensor tensor(const std::string& name) { return sparsescope::test::fixture_tensor(fixture(), name); }

// The fixture's weights (sine_weights.h), temperatures around 1.
void deterministic(sv::DLGSANet& model) {
  sparsescope::test::sine_weights(*model, [](const std::string& name) {
    return sparsescope::test::ends_with(name, "temperature");
  });
}

double max_error(const at::Tensor& got, const at::Tensor& want) {
  return ((got - want).abs().max() / std::max(1.0, want.abs().max().item<double>())).item<double>();
}

}  // namespace

TEST(Dlgsanet, MatchesTheOfficialNetworkInEveryConfiguration) {
  for (const std::string& name : sv::dlgsanet_config_names()) {
    SCOPED_TRACE(name);
    const std::string key = name.substr(std::string("dlgsanet_").size()) + "/";
    sv::DLGSANet model(sv::dlgsanet_config(name));
    std::vector<std::string> official;
    std::istringstream lines(fixture().metadata.at(key + "names"));
    for (std::string line; std::getline(lines, line);) official.push_back(line);
    const auto ours = model->named_parameters(/*recurse=*/true);
    ASSERT_EQ(ours.size(), official.size());
    for (std::size_t i = 0; i < official.size(); ++i) {
      ASSERT_EQ(ours[i].key(), official[i]) << "parameter " << i << " (same order, so checkpoints load by name and index)";
    }
    int64_t elements = 0;
    for (const auto& p : model->parameters()) elements += p.numel();
    EXPECT_EQ(elements, tensor(key + "parameters").item<int64_t>());
    deterministic(model);
    model->train();
    at::NoGradGuard no_grad;
    const at::Tensor sr = model->forward(tensor(key + "lr"));
    ASSERT_EQ(sr.sizes(), tensor(key + "sr").sizes());
    EXPECT_LT(max_error(sr, tensor(key + "sr")), 1e-5);
  }
}

TEST(Dlgsanet, TlcAttendsOverlappingWindowsInEvalMode) {
  EXPECT_EQ(sv::tlc_starts(100, 48), (std::vector<int64_t>{0, 26, 52}));
  EXPECT_EQ(sv::tlc_starts(60, 48), (std::vector<int64_t>{0, 12}));
  EXPECT_EQ(sv::tlc_starts(145, 48), (std::vector<int64_t>{0, 33, 66, 97}));
  EXPECT_EQ(sv::tlc_starts(48, 48), (std::vector<int64_t>{0}));
  for (const char* name : {"dlgsanet_tiny_x2", "dlgsanet_tiny_x3", "dlgsanet_tiny_x4"}) {
    SCOPED_TRACE(name);
    const std::string key = std::string(name).substr(std::string("dlgsanet_").size()) + "/";
    sv::DLGSANet model(sv::dlgsanet_config(name));
    deterministic(model);
    model->eval();
    at::NoGradGuard no_grad;
    const at::Tensor lr = tensor(key + "tlc_lr");
    const at::Tensor sr = model->forward(lr);
    EXPECT_LT(max_error(sr, tensor(key + "tlc_sr")), 1e-5);
    model->train();  // global attention differs once the image exceeds the window
    EXPECT_GT(max_error(model->forward(lr), sr), 1e-4);
  }
}

// The network in bfloat16 and float16 (as `sparsescope sr --dtype` and the GPU benchmark run it) gives
// the float32 output to the half types' precision, in training mode and with TLC.
TEST(Dlgsanet, RunsInHalfPrecision) {
  sv::DLGSANet model(sv::dlgsanet_config("dlgsanet_tiny_x2"));
  deterministic(model);
  at::NoGradGuard no_grad;
  const at::Tensor lr = tensor("tiny_x2/tlc_lr");
  for (bool eval : {false, true}) {
    model->train(!eval);
    model->to(at::kFloat);
    const at::Tensor want = model->forward(lr);
    for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
      SCOPED_TRACE(std::string(eval ? "eval " : "train ") + c10::toString(dtype));
      model->to(dtype);
      const at::Tensor got = model->forward(lr.to(dtype));
      EXPECT_EQ(got.scalar_type(), dtype);
      EXPECT_LT(max_error(got.to(at::kFloat), want), dtype == at::kHalf ? 0.02 : 0.1);
    }
  }
}

TEST(Dlgsanet, DynamicConvolutionIsTheUnfoldFormulation) {
  const at::Tensor x = at::randn({2, 12, 9, 11}), w = at::randn({2, 3, 7, 7, 9, 11});
  const at::Tensor cols = at::im2col(x, {7, 7}, {1, 1}, {3, 3}, {1, 1}).view({2, 3, 4, 49, 9, 11});
  const at::Tensor want = (cols * w.view({2, 3, 1, 49, 9, 11})).sum(3).view({2, 12, 9, 11});
  EXPECT_LT((sparsescope::dynamic_depthwise_conv(x, w) - want).abs().max().item<double>(), 1e-4);
}

namespace {

// Keeps every map a forward pass hands over.
struct MapProbes : sv::ProbeSet {
  sparsescope::Probe* site(const std::string&) override { return nullptr; }
  void map(const std::string& site, sv::MapKind kind, const at::Tensor& values) override {
    maps.emplace_back(site, kind, values.detach().clone());
  }
  std::vector<std::tuple<std::string, sv::MapKind, at::Tensor>> maps;
};

}  // namespace

// Recording: each MHDLSA hands over its per-pixel kernels, each SparseGSA its ReLU'd channel
// attention (TLC: the mean over windows), without changing the output; the Recorder turns them
// into "kernel" and "channel" sites whose sparsity is the fraction of non-zero weights.
TEST(Dlgsanet, RecordsKernelsAndChannelAttention) {
  sv::DlgsaConfig config = sv::dlgsanet_config("dlgsanet_tiny_x2");
  config.tlc_kernel = 8;  // windows on the 10 x 12 input
  sv::DLGSANet model(config);
  deterministic(model);
  model->eval();
  at::NoGradGuard no_grad;
  const at::Tensor lr = at::rand({2, 3, 10, 12}, at::make_generator<at::CPUGeneratorImpl>(3));
  MapProbes probes;
  EXPECT_TRUE(model->forward(lr, &probes).equal(model->forward(lr)));
  ASSERT_EQ(probes.maps.size(), 2u * 3 * 3);  // 3 groups of 3 (MHDLSA, SparseGSA) pairs
  const auto& [kernel_site, kernel_kind, kernels] = probes.maps[0];
  EXPECT_EQ(kernel_site, "deep_feature_extraction.0.body.0.IDynamicDWConv");
  EXPECT_EQ(kernel_kind, sv::MapKind::Kernel);
  EXPECT_EQ(kernels.sizes(), (at::IntArrayRef{2, 8, 10 * 12, 49}));  // 48 channels in groups of 6, 7 x 7 taps
  const auto& [channel_site, channel_kind, channels] = probes.maps[1];
  EXPECT_EQ(channel_site, "deep_feature_extraction.0.body.1.restormer_attn");
  EXPECT_EQ(channel_kind, sv::MapKind::Channel);
  EXPECT_EQ(channels.sizes(), (at::IntArrayRef{2, 6, 8, 8}));  // 6 heads of 8 channels
  EXPECT_GE(channels.min().item<float>(), 0.0f);

  sv::RecorderOptions options;
  options.items = {1};
  sv::Recorder recorder(options);
  model->forward(lr, &recorder);
  const std::vector<sv::Trace> traces = recorder.take();
  ASSERT_EQ(traces.size(), 1u);
  const sv::SiteTrace& site = traces[0].site(channel_site);
  EXPECT_EQ(site.kind, "channel");
  EXPECT_TRUE(site.probs.allclose(channels[1], 1e-6, 1e-6));
  const at::Tensor kept = channels[1].ne(0).to(at::kFloat).mean({1, 2});
  EXPECT_TRUE(site.stats.select(1, 1).allclose(kept));
  EXPECT_EQ(traces[0].site(kernel_site).kind, "kernel");
}
