// Redraw time of the viewer on head, layer and query switches for a ViT-B-sized trace (12 layers x
// 12 heads x 197 x 197, random attention), on whatever platform Qt runs (offscreen is fine). Not a
// test: it prints the times. A switch is measured from the selection until the event loop has
// painted the widgets that changed (the model recomputes, the views re-render, Qt paints), as it
// happens when a user clicks; "no-paint" stops before painting. A full repaint of every widget of
// the window is timed apart.
//   QT_QPA_PLATFORM=offscreen build/bin/sparsescope-bench-viewer [--rounds 200]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>  // at::get_num_threads: the GUI thread's, set by MainWindow

#include <QApplication>
#include <QSettings>
#include <QTemporaryDir>
#include <QWindow>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "main_window.h"
#include "sparsescope/vision/trace.h"
#include "trace_model.h"
#include "viewer_settings.h"

namespace sv = sparsescope::vision;
using namespace sparsescope::viewer;

namespace {

constexpr int64_t kLayers = 12, kHeads = 12, kGrid = 14, kTokens = 1 + kGrid * kGrid;

sv::Trace vit_b_trace() {
  at::manual_seed(0);
  sv::Trace t;
  t.info.model = "vit_base_patch16_224 (random)";
  t.info.method = "dense";
  t.info.input = "random";
  t.info.layout.prefix = 1;
  t.info.layout.grid = {1, kGrid, kGrid};
  t.info.layout.segments = {{"prefix", 0, 1}, {"image", 1, kTokens}};
  t.image = at::randint(0, 256, {224, 224, 3}).to(at::kByte);
  for (int64_t l = 0; l < kLayers; ++l) {
    sv::SiteTrace s;
    s.name = "blocks." + std::to_string(l) + ".attn";
    s.pattern = "dense";
    s.queries = s.keys = kTokens;
    s.probs = at::softmax(at::randn({kHeads, kTokens, kTokens}) * 3, -1);
    s.mask = at::ones({1, kTokens, kTokens});
    s.stats = at::rand({kHeads, sv::kStatColumns});
    s.rows = at::zeros({kHeads, 0, kTokens});
    s.row_queries = at::zeros({0}, at::kLong);
    t.sites.push_back(std::move(s));
  }
  return t;
}

struct Times {
  std::vector<double> select_ms;  // the model's update and the views' re-rendering (signals run synchronously)
  std::vector<double> total_ms;   // plus the painting of the changed widgets
};

Times measure(MainWindow& window, int rounds, const std::function<void(int)>& change) {
  Times t;
  for (int i = 0; i < rounds; ++i) {
    const auto start = std::chrono::steady_clock::now();
    change(i);
    const auto selected = std::chrono::steady_clock::now();
    QApplication::processEvents();  // delivers the update request: the changed widgets paint
    const auto painted = std::chrono::steady_clock::now();
    t.select_ms.push_back(std::chrono::duration<double, std::milli>(selected - start).count());
    t.total_ms.push_back(std::chrono::duration<double, std::milli>(painted - start).count());
  }
  return t;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

void report(const char* what, const Times& t) {
  std::printf("%-14s %8.2f %8.2f %8.2f %8.2f   %8.2f\n", what, percentile(t.total_ms, 0.5), percentile(t.total_ms, 0.9),
              percentile(t.total_ms, 0.99), *std::max_element(t.total_ms.begin(), t.total_ms.end()),
              percentile(t.select_ms, 0.5));
}

}  // namespace

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  int rounds = 200;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::max(1, std::atoi(argv[i + 1]));

  QTemporaryDir scratch;
  ViewerSettings settings(std::make_unique<QSettings>(scratch.filePath("viewer.ini"), QSettings::IniFormat));
  MainWindow window(&settings);
  window.show();
  // Painting only happens once the platform has exposed the window.
  while (!window.windowHandle() || !window.windowHandle()->isExposed()) QApplication::processEvents(QEventLoop::AllEvents, 10);
  TraceModel* model = window.trace_model();
  model->set_trace(std::make_shared<const sv::Trace>(vit_b_trace()));
  window.repaint();

  std::printf("sparsescope-viewer redraw, ViT-B-sized trace (%lld x %lld x %lld x %lld), window %d x %d, platform %s, "
              "%d LibTorch thread(s) on the GUI thread, %d rounds\n",
              static_cast<long long>(kLayers), static_cast<long long>(kHeads), static_cast<long long>(kTokens),
              static_cast<long long>(kTokens), window.width(), window.height(),
              qPrintable(QGuiApplication::platformName()), at::get_num_threads(), rounds);
  std::printf("%-14s %8s %8s %8s %8s   %8s\n", "switch (ms)", "median", "p90", "p99", "max", "no-paint");
  report("head", measure(window, rounds, [&](int i) { model->select_head((i + 1) % kHeads); }));
  report("layer", measure(window, rounds, [&](int i) { model->select_layer((i + 1) % kLayers); }));
  report("query (patch)", measure(window, rounds, [&](int i) { model->select_query(1 + (i * 37) % (kTokens - 1)); }));
  std::vector<double> full;
  for (int i = 0; i < rounds; ++i) {
    const auto start = std::chrono::steady_clock::now();
    window.repaint();
    full.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("%-14s %8.2f %8.2f %8.2f %8.2f\n", "full repaint", percentile(full, 0.5), percentile(full, 0.9),
              percentile(full, 0.99), *std::max_element(full.begin(), full.end()));
  return 0;
}
