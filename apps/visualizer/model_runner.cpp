#include "model_runner.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <thread>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/model_card.h"
#include "sparsescope/vision/model_spec.h"
#include "sparsescope/vision/prediction.h"
#include "sparsescope/vision/recorder.h"
#include "sparsescope/vision/registry.h"
#include "sparsescope/vision/vit_input.h"
#include "sparsescope/vision/vit_trace.h"

namespace sparsescope::viewer {

namespace {

bool same(const RunSettings& a, const RunSettings& b) {
  return a.model == b.model && a.weights == b.weights && a.device == b.device && a.dtype == b.dtype;
}

// Counts the attention sites a forward pass reaches, for progress (and as its cancellation point),
// and hands them on to the recorder.
class CountingProbes : public vision::ProbeSet {
 public:
  CountingProbes(vision::ProbeSet& inner, int total, const std::function<void(int, int)>& on_site)
      : inner_(inner), total_(total), on_site_(on_site) {}
  Probe* site(const std::string& name) override {
    if (on_site_) on_site_(++done_, total_);
    return inner_.site(name);
  }

 private:
  vision::ProbeSet& inner_;
  int total_;
  int done_ = 0;
  const std::function<void(int, int)>& on_site_;
};

}  // namespace

QStringList ModelRunner::methods() {
  QStringList methods;
  for (const auto& name : vision::attention_policy_names()) methods << QString::fromStdString(name);
  return methods;
}

QString ModelRunner::default_method(const QString& weights) {
  try {
    const auto card = vision::read_model_card(weights.toStdString());
    if (card) return QString::fromStdString(vision::default_attention_method(card->config));
  } catch (const std::exception&) {  // unreadable or malformed: record() says why when run
  }
  return vision::kDensePolicy;
}

QStringList ModelRunner::devices() {
  QStringList devices{"cpu"};
  if (at::hasCUDA()) devices << "cuda";
  return devices;
}

void ModelRunner::load(const RunSettings& s) {
  if (loaded_ && same(*loaded_, s)) return;
  loaded_.reset();
  SPARSESCOPE_CHECK(!s.weights.isEmpty(), "no weights file chosen (Model panel: Weights)");
  vision::LoadedModel loaded = vision::load_model(
      {s.model.toStdString(), s.weights.toStdString(), "", s.device.toStdString(), s.dtype.toStdString()},
      {"model", "weights", "method", "device", "dtype"});
  device_ = loaded.device;
  dtype_ = loaded.dtype;
  model_ = loaded.model;
  classes_ = std::move(loaded.classes);
  loaded_ = s;
}

vision::Trace ModelRunner::record(const RunSettings& settings, const vision::Image& image, const std::string& input,
                                  int64_t frame, const std::function<void(int, int)>& on_site) {
  SPARSESCOPE_CHECK(methods().contains(settings.method), "method '", settings.method.toStdString(),
                    "' is not available; the viewer runs: ", methods().join(", ").toStdString());
  // Every core for the model (the GUI thread keeps one thread; OpenMP's setting is per thread).
  at::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  load(settings);
  try {
    vision::use_attention_method(model_, settings.method.toStdString());
  } catch (const sparsescope::Error& e) {
    SPARSESCOPE_FAIL("method: ", e.what());
  }
  const auto& config = model_->config();
  const at::Tensor pixels = vision::vit_pixels(image, config);             // uint8 [C, S, S], C = 1 or 3
  const at::Tensor network_input = vision::normalize_pixels(pixels, config.eval);  // float32 [C, S, S]
  vision::Recorder recorder;
  CountingProbes probes(recorder, static_cast<int>(config.depth), on_site);
  at::Tensor logits;
  {
    c10::NoGradGuard no_grad;
    logits = model_->forward(network_input.unsqueeze(0).to(device_, dtype_), &probes);  // [1, classes]
  }
  std::vector<vision::Trace> traces = recorder.take();
  SPARSESCOPE_CHECK(traces.size() == 1, "the recorder returned ", traces.size(), " traces for one image");
  vision::Trace trace = std::move(traces.front());
  trace.info = vision::vit_trace_info(config, settings.method.toStdString(), input, frame);
  if (config.num_classes > 0) trace.info.topk = vision::top_classes(logits, 5, classes_).front();
  // What the network saw, as RGB for the overlays: [S, S, C] -> [S, S, 3].
  trace.image = pixels.permute({1, 2, 0}).expand({pixels.size(1), pixels.size(2), 3}).contiguous();
  return trace;
}

}  // namespace sparsescope::viewer
