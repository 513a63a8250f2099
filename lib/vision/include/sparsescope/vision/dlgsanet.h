#pragma once
// DLGSANet (Li et al. 2023): lightweight super-resolution with dynamic local (MHDLSA: per-pixel
// depthwise kernels from a hypernetwork) and sparse global (SparseGSA: channel attention with ReLU)
// self-attention, exact to the official basicsr/archs/dlgsanet_arch.py with its parameter names, so
// BasicSR checkpoints (params / params_ema) load unchanged.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sparsescope::vision {

class ProbeSet;  // probe_set.h

struct DlgsaConfig {
  std::string name;
  int64_t scale = 4;
  int64_t dim = 48;
  int64_t groups = 3;                 ///< BuildBlocks
  int64_t blocks = 3;                 ///< MHDLSA + SparseGSA pairs per BuildBlock
  int64_t group_channels = 6;         ///< channels sharing one dynamic kernel ("idynamic_num_heads")
  int64_t kernel_size = 7;            ///< of the dynamic depthwise kernels ("window_size")
  int64_t attention_heads = 6;        ///< "restormer_num_heads"
  double ffn_expansion = 2.0;         ///< GDFN hidden width / dim
  double img_range = 1.0;
  std::array<double, 3> mean = {0.4488, 0.4371, 0.4040};  ///< DIV2K's, subtracted from the input
  int64_t tlc_kernel = 48;            ///< test-time local converter window of the attention (eval)
  bool tlc = true;                    ///< TLC in eval mode, as the official validation runs
};

/// "dlgsanet_{tiny,light,large}_x{2,3,4}": the official options (Tiny 48C3G3B, Light 48C4G3B,
/// Large 90C6G4B; TLC kernel 96 / 72 / 48 for x2 / x3 / x4).
DlgsaConfig dlgsanet_config(const std::string& name);
std::vector<std::string> dlgsanet_config_names();

/// The configuration as JSON (the model card of DLGSANet weights under kDlgsaCardKey) and back;
/// the reader throws sparsescope::Error naming a missing or mistyped key.
inline constexpr const char* kDlgsaCardKey = "sparsescope.dlgsanet";
std::string dlgsanet_config_json(const DlgsaConfig& config);
DlgsaConfig dlgsanet_config_from_json(const std::string& text);

class DLGSANetImpl : public torch::nn::Module {
 public:
  explicit DLGSANetImpl(DlgsaConfig config);
  /// lr [B, 3, H, W] in [0, 1] -> sr [B, 3, scale H, scale W] (not clamped). With `probes`, every
  /// MHDLSA hands over its per-pixel kernels (ProbeSet::map, MapKind::Kernel: [B, groups, H W, k k],
  /// rows in the LR's raster order) as site "deep_feature_extraction.<g>.body.<i>.IDynamicDWConv" and
  /// every SparseGSA its channel attention after the ReLU (MapKind::Channel: [B, heads, C / heads,
  /// C / heads], the mean over TLC's windows in eval mode) as ".restormer_attn".
  at::Tensor forward(const at::Tensor& lr, ProbeSet* probes = nullptr);
  const DlgsaConfig& config() const { return config_; }

 private:
  DlgsaConfig config_;
  torch::nn::Conv2d embed_{nullptr}, body_conv_{nullptr}, upsample_{nullptr};
  torch::nn::ModuleList groups_;
};
TORCH_MODULE(DLGSANet);

/// A DLGSANet with the weights of `path` (CPU, float32, eval mode): safetensors written by
/// `sparsescope train --task sr` (their card names the configuration) or a BasicSR checkpoint
/// (`.pth`, params_ema preferred over params). `name`, a configuration, overrides the card and is
/// needed for files without one. Throws sparsescope::Error naming the file and what does not fit.
DLGSANet load_dlgsanet(const std::string& path, const std::string& name = "");

/// TLC's windows along an axis of `n` pixels for a `kernel` (megvii TLC's grids): the starts.
std::vector<int64_t> tlc_starts(int64_t n, int64_t kernel);

}  // namespace sparsescope::vision
