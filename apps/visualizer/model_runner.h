#pragma once
// Records a trace of one forward pass of a ViT-family model over an image, as `sparsescope infer
// --record` does, keeping the loaded model for the next run while the settings stay the same (the
// frames of a video). Widget-free and synchronous: the viewer calls it on its job thread.
#include <ATen/core/Tensor.h>

#include <QStringList>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vision/vit.h"
#include "viewer_settings.h"

namespace sparsescope::viewer {

class ModelRunner {
 public:
  /// The attention methods a run can use (the registered policies; a model runs its own or dense).
  static QStringList methods();
  /// The method a weights file was trained for (its model card's attention policy); "dense" for
  /// other files, also unreadable ones (the run then reports them).
  static QString default_method(const QString& weights);
  /// The devices of this machine ("cpu", and "cuda" when LibTorch sees a GPU).
  static QStringList devices();

  /// Builds the model (the named configuration, or with an empty name the one in the weights'
  /// model card), feeds it `image` as its eval transform says (gray for one-channel models), runs
  /// it under a Recorder and returns the trace (input name `input`, video frame index `frame` or
  /// -1) with the picture the network saw and the model's five most probable classes (named by its
  /// model card). `on_site(done, total)` is called as each attention site
  /// is reached and may throw to stop the run. Throws sparsescope::Error naming the setting at
  /// fault: the model name, the weights file, the method, the device.
  vision::Trace record(const RunSettings& settings, const vision::Image& image, const std::string& input,
                       int64_t frame, const std::function<void(int, int)>& on_site = {});

 private:
  void load(const RunSettings& settings);

  std::optional<RunSettings> loaded_;
  vision::VisionTransformer model_{nullptr};
  std::vector<std::string> classes_;
  at::Device device_{at::kCPU};
  at::ScalarType dtype_ = at::kFloat;
};

}  // namespace sparsescope::viewer
