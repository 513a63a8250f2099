// DLGSANet as an SrModel (sr_model.h): weights with its card or a BasicSR checkpoint, upscaling,
// and the recording of its per-pixel kernels and channel attention.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/sr_model.h"
#include "sparsescope/vision/state_dict.h"

namespace sparsescope::vision {

namespace {

class DlgsanetSr : public SrModel {
 public:
  explicit DlgsanetSr(DLGSANet model) : model_(std::move(model)) {}
  std::string name() const override { return model_->config().name; }
  int64_t scale() const override { return model_->config().scale; }
  void to(at::Device device, at::ScalarType dtype) override {
    model_->to(device, dtype);
    device_ = device;
    dtype_ = dtype;
  }
  at::Tensor upscale(const at::Tensor& lr) override {
    const at::NoGradGuard no_grad;
    return model_->forward(lr.to(device_, dtype_)).to(at::kFloat);
  }
  Trace record(const Image& image, int64_t size, const std::string& input, int64_t frame) override {
    SPARSESCOPE_CHECK(size >= 1, "the recorded square must be at least 1 pixel, got ", size);
    const at::NoGradGuard no_grad;
    const SrCrop c = central_crop(image, size);
    const at::Tensor crop = image_to_tensor(image).narrow(0, c.top, c.height).narrow(1, c.left, c.width).contiguous();
    Recorder recorder;
    model_->forward(crop.permute({2, 0, 1}).unsqueeze(0).to(device_, dtype_).div(255), &recorder);
    Trace trace = recorder.take().at(0);
    trace.image = crop;
    trace.info.model = name();
    trace.info.method = "dlgsanet";
    trace.info.input = input;
    trace.info.frame = frame;
    trace.info.layout.grid = {1, c.height, c.width};
    return trace;
  }

 private:
  DLGSANet model_;
  at::Device device_{at::kCPU};
  at::ScalarType dtype_ = at::kFloat;
};

bool has_card(const std::string& weights) {
  if (is_torch_save(weights)) return false;
  return load_safetensors(weights).metadata.count(kDlgsaCardKey) > 0;
}

}  // namespace

namespace detail {

void register_dlgsanet_sr_model() {
  register_sr_model_family({"dlgsanet", dlgsanet_config_names, has_card,
                            [](const std::string& weights, const std::string& config) -> std::unique_ptr<SrModel> {
                              return std::make_unique<DlgsanetSr>(load_dlgsanet(weights, config));
                            }});
}

}  // namespace detail

}  // namespace sparsescope::vision
