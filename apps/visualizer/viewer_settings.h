#pragma once
// What the viewer remembers between sessions: recent files, the model choice and the display
// options. Widget-free over a QSettings store, so tests and --screenshot runs can use their own.
#include <QSettings>
#include <QString>
#include <QStringList>
#include <memory>

#include "sparsescope/vision/registry.h"

namespace sparsescope::viewer {

/// How to run a model on an image: a named configuration, its weights, the attention method and
/// where and in which precision to compute.
struct RunSettings {
  QString model;    // vit_config() name; empty: the configuration in the weights' model card
  QString weights;  // safetensors or .pth with timm's names
  QString method = vision::kDensePolicy;
  QString device = "cpu";  // "cpu" | "cuda"
  QString dtype = "fp32";  // "fp32" | "fp16" | "bf16"
};

class ViewerSettings {
 public:
  /// Uses `store` (the user's settings file in the application, a temporary file in tests).
  explicit ViewerSettings(std::unique_ptr<QSettings> store);

  static constexpr int kMaxRecentFiles = 10;
  /// Most recent first; files that no longer exist are left out.
  QStringList recent_files() const;
  /// Moves `path` (made absolute) to the front of the recent files.
  void add_recent_file(const QString& path);

  /// The last run's settings; at first the bundled default model (assets/models) when present.
  RunSettings run_settings() const;
  void set_run_settings(const RunSettings& settings);

  QString colormap() const;  // a vision::parse_colormap name
  void set_colormap(const QString& name);
  double opacity() const;  // 0..1
  void set_opacity(double opacity);

 private:
  std::unique_ptr<QSettings> store_;
};

}  // namespace sparsescope::viewer
