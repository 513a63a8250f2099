// DLGSANet against the official dlgsanet_arch.py (fixtures from scripts/fixtures/make_dlgsanet_fixtures.py):
// parameter names and counts of all nine official configurations, the SR output in training mode
// (global sparse attention) and in eval mode with TLC, within 1e-5 in float32 on the CPU.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <vector>
#include <string>

#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/safetensors.h"

namespace sv = sparsescope::vision;

namespace {

const sv::SafetensorsFile& fixture() {
  static const sv::SafetensorsFile file =
      sv::load_safetensors(std::string(SPARSESCOPE_FIXTURES_DIR) + "/dlgsanet/dlgsanet.safetensors");
  return file;
}

at::Tensor tensor(const std::string& name) {
  for (const auto& [n, t] : fixture().tensors) {
    if (n == name) return t;
  }
  return {};
}

// The fixture's weights: 0.05 sin(0.37 i + o) over the flat index, o = the name's bytes summed mod 97.
void deterministic(sv::DLGSANet& model) {
  at::NoGradGuard no_grad;
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    int offset = 0;
    for (const unsigned char ch : item.key()) offset += ch;
    offset %= 97;
    const at::Tensor i = at::arange(item.value().numel(), at::kDouble);
    item.value().copy_((0.05 * at::sin(0.37 * i + offset)).view(item.value().sizes()));
    if (item.key().size() >= 11 && item.key().compare(item.key().size() - 11, 11, "temperature") == 0) item.value().add_(1.0);
  }
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

TEST(Dlgsanet, DynamicConvolutionIsTheUnfoldFormulation) {
  const at::Tensor x = at::randn({2, 12, 9, 11}), w = at::randn({2, 3, 7, 7, 9, 11});
  const at::Tensor cols = at::im2col(x, {7, 7}, {1, 1}, {3, 3}, {1, 1}).view({2, 3, 4, 49, 9, 11});
  const at::Tensor want = (cols * w.view({2, 3, 1, 49, 9, 11})).sum(3).view({2, 12, 9, 11});
  EXPECT_LT((sv::dynamic_depthwise_conv(x, w) - want).abs().max().item<double>(), 1e-4);
}
