#include "viewer_settings.h"

#include <QFileInfo>
#include <algorithm>

namespace sparsescope::viewer {

ViewerSettings::ViewerSettings(std::unique_ptr<QSettings> store) : store_(std::move(store)) {}

QStringList ViewerSettings::recent_files() const {
  QStringList files;
  for (const QString& f : store_->value("recent_files").toStringList())
    if (QFileInfo::exists(f)) files << f;
  return files;
}

void ViewerSettings::add_recent_file(const QString& path) {
  const QString absolute = QFileInfo(path).absoluteFilePath();
  QStringList files = store_->value("recent_files").toStringList();
  files.removeAll(absolute);
  files.prepend(absolute);
  while (files.size() > kMaxRecentFiles) files.removeLast();
  store_->setValue("recent_files", files);
}

RunSettings ViewerSettings::run_settings() const {
  RunSettings defaults;
  if (QFileInfo::exists(SPARSESCOPE_DEFAULT_WEIGHTS)) defaults.weights = SPARSESCOPE_DEFAULT_WEIGHTS;
  RunSettings s;
  s.model = store_->value("run/model", defaults.model).toString();
  s.weights = store_->value("run/weights", defaults.weights).toString();
  s.method = store_->value("run/method", defaults.method).toString();
  s.device = store_->value("run/device", defaults.device).toString();
  s.dtype = store_->value("run/dtype", defaults.dtype).toString();
  return s;
}

void ViewerSettings::set_run_settings(const RunSettings& s) {
  store_->setValue("run/model", s.model);
  store_->setValue("run/weights", s.weights);
  store_->setValue("run/method", s.method);
  store_->setValue("run/device", s.device);
  store_->setValue("run/dtype", s.dtype);
}

QString ViewerSettings::colormap() const { return store_->value("view/colormap", "viridis").toString(); }

void ViewerSettings::set_colormap(const QString& name) { store_->setValue("view/colormap", name); }

double ViewerSettings::opacity() const {
  return std::clamp(store_->value("view/opacity", 0.6).toDouble(), 0.0, 1.0);
}

void ViewerSettings::set_opacity(double opacity) { store_->setValue("view/opacity", std::clamp(opacity, 0.0, 1.0)); }

}  // namespace sparsescope::viewer
