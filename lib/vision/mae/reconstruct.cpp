// Loading MAE weights, and one image's masking, reconstruction and recording (mae_reconstruct.h).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/mae_reconstruct.h"
#include "sparsescope/vision/module_weights.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/state_dict.h"
#include "sparsescope/vision/vit_trace.h"

namespace sparsescope::vision {

MaskedAutoencoder load_mae(const std::string& path, const std::string& name) {
  NamedTensors weights;
  MaeConfig config;
  if (is_torch_save(path)) {
    SPARSESCOPE_CHECK(!name.empty(), "'", path, "' is a PyTorch checkpoint without a model card: name its "
                      "configuration (--model mae_vit_base_patch16, ...)");
    weights = load_pth_state_dict(path);
  } else {
    SafetensorsFile file = load_safetensors(path);
    const auto card = file.metadata.find(kMaeCardKey);
    if (name.empty()) {
      SPARSESCOPE_CHECK(card != file.metadata.end(), "'", path, "' carries no ", kMaeCardKey,
                        " model card: not the weights of a MAE or MAE-LUT pretraining run (`sparsescope train --task "
                        "mae`); for official checkpoints name the configuration (--model)");
      try {
        config = mae_config_from_json(card->second);
      } catch (const Error& e) {
        SPARSESCOPE_FAIL("'", path, "': ", e.what());
      }
    }
    weights = std::move(file.tensors);
  }
  if (!name.empty()) config = mae_config(name);
  MaskedAutoencoder model(config);
  assign_weights(*model, cast_floating(std::move(weights), at::kFloat), path);
  model->eval();
  return model;
}

MaeReconstruction reconstruct_mae(MaskedAutoencoder& model, const Image& image, double mask_ratio, uint64_t seed,
                                  Trace* trace, const std::string& input) {
  const MaeConfig& c = model->config();
  SPARSESCOPE_CHECK(mask_ratio > 0 && mask_ratio < 1, "the mask ratio must be in (0, 1), got ", mask_ratio);
  const int64_t visible = c.visible(mask_ratio);
  SPARSESCOPE_CHECK(visible >= 1, "mask ratio ", mask_ratio, " leaves none of the ", c.num_patches(), " patches visible");
  at::NoGradGuard no_grad;
  EvalTransform transform;
  transform.img_size = static_cast<int>(c.img_size);
  transform.crop_pct = 1.0;
  const auto device = model->parameters().front().device();
  const at::Tensor x = eval_transform(image, transform).unsqueeze(0).to(device);  // [1, 3, S, S]
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor noise = at::rand({1, c.num_patches()}, gen).to(device);

  std::unique_ptr<Recorder> recorder;
  if (trace) {
    RecorderOptions options;
    options.compare_dense = false;
    recorder = std::make_unique<Recorder>(options);
  }
  const auto out = model->forward(x, noise, mask_ratio, recorder.get());
  at::Tensor pred = out.pred;  // [1, L, p * p * 3], normalised pixels
  if (c.norm_pix_loss) {       // back from each patch's own normalisation, as forward_loss applied it
    const at::Tensor target = model->patchify(x);
    pred = pred * (target.var(-1, /*unbiased=*/true, /*keepdim=*/true) + 1e-6).sqrt() + target.mean(-1, true);
  }
  const at::Tensor mask = out.masking.mask;                                                // [1, L]
  const at::Tensor spread = mask.unsqueeze(-1).expand({1, c.num_patches(), c.patch_size * c.patch_size * 3});
  const at::Tensor removed = model->unpatchify(spread);                                    // [1, 3, S, S], 1 removed
  const at::Tensor filled = x * (1 - removed) + model->unpatchify(pred) * removed;
  // Grey (0.5) in the removed patches of the masked picture.
  const at::Tensor grey = ((0.5 - at::tensor(at::ArrayRef<float>(transform.mean.data(), 3))) /
                           at::tensor(at::ArrayRef<float>(transform.std.data(), 3)))
                              .view({1, 3, 1, 1})
                              .to(device);

  MaeReconstruction r;
  r.original = denormalize_input(x[0], transform);
  r.masked = denormalize_input((x * (1 - removed) + grey * removed)[0], transform);
  r.reconstruction = denormalize_input(filled[0], transform);  // clamped to 0..255 there
  r.mask = mask[0].to(at::kCPU, at::kFloat);
  r.loss = out.loss.item<double>();
  if (trace) {
    *trace = std::move(recorder->take().front());
    trace->info.model = c.name;
    trace->info.method = "dense";
    trace->info.input = input;
    trace->info.layout.prefix = 1;
    trace->info.layout.grid = {1, c.grid(), c.grid()};
    trace->info.layout.segments = {{"prefix", 0, 1}, {"image", 1, 1 + c.num_patches()}};
    const at::Tensor keep = out.masking.ids_keep[0].to(at::kCPU);
    trace->info.layout.visible.assign(keep.data_ptr<int64_t>(), keep.data_ptr<int64_t>() + keep.numel());
    for (auto& site : trace->sites) {
      if (site.name.rfind("blocks.", 0) == 0) site.subset = kVisibleTokens;
    }
    trace->image = r.masked;
  }
  return r;
}

}  // namespace sparsescope::vision
