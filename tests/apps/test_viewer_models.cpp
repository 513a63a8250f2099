// The viewer's widget-free parts: token positions, the trace model, map and mask rendering, the
// head grid layout, the stats table and CSV, settings, documents, the model runner and the job
// thread. QTest with the offscreen platform (text rendering needs a QGuiApplication, no window is
// shown).
#include <ATen/ATen.h>

#include <QAbstractItemModelTester>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSemaphore>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <memory>

#include "document.h"
#include "head_grid.h"
#include "job_runner.h"
#include "map_render.h"
#include "mask_render.h"
#include "model_runner.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "sparsescope/vision/image.h"
#include "stats_csv.h"
#include "stats_table_model.h"
#include "token_grid.h"
#include "trace_model.h"
#include "image_probe.h"
#include "viewer_fixture.h"
#include "viewer_settings.h"

namespace sv = sparsescope::vision;
namespace st = sparsescope::test;
using namespace sparsescope::viewer;

namespace {

using sparsescope::test::brightest_cell;

// The run settings a fresh settings file starts with: the bundled dense model (assets/models).
RunSettings bundled_defaults() {
  QTemporaryDir dir;
  return ViewerSettings(std::make_unique<QSettings>(dir.filePath("viewer.ini"), QSettings::IniFormat)).run_settings();
}

sv::Image ankle_boot() {
  return sv::read_image(std::string(SPARSESCOPE_SAMPLES_DIR) + "/fashion-mnist/00000_ankle_boot.png");
}

std::shared_ptr<const sv::Trace> shared_fixture() { return std::make_shared<const sv::Trace>(st::fixture_trace()); }

// (row, col) of the largest value of a [rows, cols] map.
std::pair<int64_t, int64_t> argmax2d(const at::Tensor& map) {
  const int64_t i = map.flatten().argmax().item<int64_t>();
  return {i / map.size(1), i % map.size(1)};
}

}  // namespace

class ViewerModels : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void token_positions_data() {
    QTest::addColumn<qint64>("query");
    QTest::addColumn<QString>("text");
    QTest::newRow("class token") << qint64(0) << "CLS";
    QTest::newRow("first patch") << qint64(1) << "patch (0, 0)";
    QTest::newRow("row 2 col 3") << qint64(1 + 2 * 5 + 3) << "patch (2, 3)";
    QTest::newRow("last patch") << qint64(25) << "patch (4, 4)";
  }
  void token_positions() {
    QFETCH(qint64, query);
    QFETCH(QString, text);
    const auto layout = st::fixture_trace().info.layout;
    QCOMPARE(QString::fromStdString(describe_token(layout, query)), text);
    const TokenPosition p = locate_token(layout, query);
    if (!p.prefix) QCOMPARE(patch_token(layout, p.t, p.row, p.col), int64_t{query});
  }

  void model_starts_at_last_layer_with_class_token() {
    TraceModel model;
    QSignalSpy changed(&model, &TraceModel::trace_changed);
    model.set_trace(shared_fixture());
    QCOMPARE(changed.count(), 1);
    QCOMPARE(model.layers(), int(st::kFixtureLayers));
    QCOMPARE(model.max_heads(), int(st::kFixtureHeads));
    QCOMPARE(model.selection().layer, int(st::kFixtureLayers - 1));
    QCOMPARE(model.selection().head, 0);
    QCOMPARE(model.selection().query, int64_t{0});
    QCOMPARE(model.layer_maps(0).sizes().vec(),
             (std::vector<int64_t>{st::kFixtureHeads, 1, st::kFixtureGrid, st::kFixtureGrid}));
    QVERIFY(model.rollout_maps().defined());
    QCOMPARE(model.describe_selection(), QString("blocks.2.attn, head 0, query CLS"));
  }

  void selected_map_peaks_where_the_fixture_says_data() {
    QTest::addColumn<int>("layer");
    QTest::addColumn<int>("head");
    QTest::addColumn<qint64>("query");
    QTest::newRow("L0 h0 CLS") << 0 << 0 << qint64(0);
    QTest::newRow("L2 h3 CLS") << 2 << 3 << qint64(0);
    QTest::newRow("L1 h2 patch 7") << 1 << 2 << qint64(7);
    QTest::newRow("L2 h1 last patch") << 2 << 1 << qint64(25);
  }
  void selected_map_peaks_where_the_fixture_says() {
    QFETCH(int, layer);
    QFETCH(int, head);
    QFETCH(qint64, query);
    TraceModel model;
    model.set_trace(shared_fixture());
    model.select({layer, head, MapKind::Head, query});
    QCOMPARE(argmax2d(model.selected_map()), st::peak_patch(layer, head, query));
  }

  void query_change_recomputes_maps_head_change_does_not() {
    TraceModel model;
    model.set_trace(shared_fixture());
    QSignalSpy queries(&model, &TraceModel::query_changed);
    QSignalSpy selections(&model, &TraceModel::selection_changed);
    model.select_head(2);
    QCOMPARE(queries.count(), 0);
    QCOMPARE(selections.count(), 1);
    model.select_query(9);
    QCOMPARE(queries.count(), 1);
    QCOMPARE(selections.count(), 2);
    model.select_query(9);  // no change, no signal
    QCOMPARE(selections.count(), 2);
    QCOMPARE(argmax2d(model.layer_maps(0)[1][0]), st::peak_patch(0, 1, 9));
  }

  void mean_and_rollout_agree_with_the_library() {
    TraceModel model;
    const auto trace = shared_fixture();
    model.set_trace(trace);
    model.select_query(4);
    QVERIFY(at::allclose(model.mean_maps(1), model.layer_maps(1).mean(0)));
    QVERIFY(at::allclose(model.rollout_maps(), sv::rollout(*trace, 4)));
    model.select_kind(MapKind::Rollout);
    QVERIFY(at::allclose(model.selected_map(), sv::rollout(*trace, 4)[0]));
    model.select_kind(MapKind::MeanOfHeads);
    QVERIFY(at::allclose(model.selected_map(), model.mean_maps(model.selection().layer)[0]));
  }

  void out_of_range_selections_throw_and_change_nothing() {
    TraceModel model;
    model.set_trace(shared_fixture());
    const Selection before = model.selection();
    QVERIFY_THROWS_EXCEPTION(sparsescope::Error, model.select_head(int(st::kFixtureHeads)));
    QVERIFY_THROWS_EXCEPTION(sparsescope::Error, model.select_layer(-1));
    QVERIFY_THROWS_EXCEPTION(sparsescope::Error, model.select_query(st::kFixtureTokens));
    QVERIFY(model.selection() == before);
  }

  void next_trace_keeps_a_fitting_selection_and_resets_otherwise() {
    TraceModel model;
    model.set_trace(shared_fixture());
    model.select({1, 3, MapKind::Head, 12});
    model.set_trace(shared_fixture());  // the next frame of the same model
    QVERIFY(model.selection() == (Selection{1, 3, MapKind::Head, 12}));
    auto smaller = st::fixture_trace();
    smaller.sites.pop_back();
    model.set_trace(std::make_shared<const sv::Trace>(std::move(smaller)));
    QVERIFY(model.selection() == (Selection{1, 0, MapKind::Head, 0}));
  }

  void a_trace_that_does_not_fit_its_layout_is_refused() {
    TraceModel model;
    model.set_trace(shared_fixture());
    auto bad = st::fixture_trace("broken.png");
    bad.info.layout.grid = {1, 3, 3};  // 10 tokens, but the sites have 26
    try {
      model.set_trace(std::make_shared<const sv::Trace>(std::move(bad)));
      QFAIL("no error for a trace whose sites do not fit its layout");
    } catch (const sparsescope::Error& e) {
      QVERIFY2(std::string(e.what()).find("broken.png") != std::string::npos, e.what());
    }
    QCOMPARE(model.trace().info.input, std::string("fixture.png"));  // unchanged
  }

  void overlay_is_brightest_on_the_peak_patch() {
    TraceModel model;
    model.set_trace(shared_fixture());
    model.select({2, 1, MapKind::Head, 0});
    const RenderedMap r = render_overlay(model.background(), model.selected_map(), sv::Colormap::Gray, 1.0);
    QCOMPARE(r.image.size(), QSize(80, 80));
    const auto [row, col] = st::peak_patch(2, 1, 0);
    QCOMPARE(brightest_cell(r.image, 5, 5), std::make_pair(int64_t(row), int64_t(col)));
    QVERIFY(std::abs(r.lo - model.selected_map().min().item<double>()) < 1e-6);
    QVERIFY(std::abs(r.hi - model.selected_map().max().item<double>()) < 1e-6);
  }

  void zero_opacity_leaves_the_image() {
    TraceModel model;
    model.set_trace(shared_fixture());
    const RenderedMap r = render_overlay(model.background(), model.selected_map(), sv::Colormap::Turbo, 0.0);
    QCOMPARE(r.image.pixelColor(8, 8), QColor(160, 160, 160));  // patch (0, 0) of the checkerboard
    QCOMPARE(r.image.pixelColor(24, 8), QColor(96, 96, 96));
  }

  void colorbar_runs_from_last_colour_at_the_top_to_first() {
    const QImage bar = render_colorbar(sv::Colormap::Gray, 4, 64);
    QCOMPARE(bar.size(), QSize(4, 64));
    QVERIFY(qGray(bar.pixel(0, 0)) > 250);
    QVERIFY(qGray(bar.pixel(0, 63)) < 5);
  }

  void grid_layout_hit_tests_every_tile() {
    const HeadGridLayout layout(3, 4, 20);
    std::vector<GridCell> cells;
    for (int l = 0; l < 3; ++l) {
      for (int h = 0; h < 4; ++h) cells.push_back({MapKind::Head, l, h});
      cells.push_back({MapKind::MeanOfHeads, l, 0});
    }
    cells.push_back({MapKind::Rollout, 0, 0});
    for (const auto& cell : cells) {
      const auto hit = layout.cell_at(layout.tile_rect(cell).center());
      QVERIFY(hit.has_value());
      QVERIFY(*hit == cell);
      QVERIFY(QRect(QPoint(0, 0), layout.size()).contains(layout.tile_rect(cell)));
    }
    QVERIFY(!layout.cell_at({0, 0}).has_value());  // the labels
    const QRect first = layout.tile_rect({MapKind::Head, 0, 0});
    QVERIFY(!layout.cell_at({first.right() + 1, first.center().y()}).has_value());  // a gap
    QVERIFY(!layout.cell_at(layout.tile_rect({MapKind::Rollout, 0, 0}).center() + QPoint(22, 0)).has_value());
  }

  void grid_tiles_show_each_heads_peak() {
    TraceModel model;
    model.set_trace(shared_fixture());
    model.select_query(3);
    const HeadGridLayout layout(model.layers(), model.max_heads(), 40);
    const QImage grid = render_head_grid(model, layout, sv::Colormap::Gray);
    QCOMPARE(grid.size(), layout.size());
    for (int l = 0; l < model.layers(); ++l) {
      for (int h = 0; h < model.heads(l); ++h) {
        const QImage tile = grid.copy(layout.tile_rect({MapKind::Head, l, h}));
        const auto [row, col] = st::peak_patch(l, h, 3);
        QCOMPARE(brightest_cell(tile, 5, 5), std::make_pair(int64_t(row), int64_t(col)));
      }
    }
  }

  void mask_images_show_kept_connections_and_probabilities() {
    const auto trace = st::fixture_trace();
    const auto& site = trace.sites[1];
    const MaskImages m = render_mask(site, 2, sv::Colormap::Viridis);
    QCOMPARE(m.pool, int64_t{1});
    QCOMPARE(m.mask.size(), QSize(int(st::kFixtureTokens), int(st::kFixtureTokens)));
    QCOMPARE(m.probs.size(), m.mask.size());
    const auto [row, col] = st::peak_patch(1, 2, 5);
    const int peak = int(1 + row * st::kFixtureGrid + col);
    QCOMPARE(qGray(m.mask.pixel(peak, 5)), 255);  // (x = key, y = query)
    QCOMPARE(qGray(m.mask.pixel(0, 5)), 255);
    int dropped = 1;
    while (dropped == peak || dropped == 5) ++dropped;
    QCOMPARE(qGray(m.mask.pixel(dropped, 5)), 0);
    QVERIFY(m.probs_hi > 0);
    try {
      render_mask(site, 4, sv::Colormap::Viridis);
      QFAIL("no error for head 4 of 4");
    } catch (const sparsescope::Error& e) {
      QVERIFY2(std::string(e.what()).find("blocks.1.attn") != std::string::npos, e.what());
    }
  }

  void stats_table_shows_each_statistic() {
    StatsTableModel table;
    QAbstractItemModelTester tester(&table, QAbstractItemModelTester::FailureReportingMode::QtTest);
    table.set_trace(shared_fixture());
    QCOMPARE(table.rowCount(), int(st::kFixtureLayers));
    QCOMPARE(table.columnCount(), int(st::kFixtureHeads));
    QCOMPARE(table.headerData(1, Qt::Vertical).toString(), QString("blocks.1.attn"));
    QCOMPARE(table.data(table.index(0, 1)).toString(), QString("0.800"));
    QCOMPARE(table.data(table.index(0, 3)).toString(), QString("n/a"));  // recall not compared
    QVERIFY(!table.data(table.index(0, 3), Qt::BackgroundRole).isValid());
    QVERIFY(table.data(table.index(0, 1), Qt::BackgroundRole).value<QColor>().isValid());
    QSignalSpy changed(&table, &QAbstractItemModel::dataChanged);
    table.set_statistic(sv::kEntropy);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(table.data(table.index(2, 1), Qt::UserRole).toDouble(), double(st::fixture_stat(2, 1, sv::kEntropy)));
    QVERIFY(table.data(table.index(2, 1), Qt::ToolTipRole).toString().contains("density 0.3"));
    table.set_trace(nullptr);
    QCOMPARE(table.rowCount(), 0);
  }

  void stats_csv_has_one_line_per_head() {
    const auto trace = st::fixture_trace();
    const QString csv = QString::fromStdString(stats_csv(trace));
    const QStringList lines = csv.trimmed().split('\n');
    QCOMPARE(lines.size(), int(1 + st::kFixtureLayers * st::kFixtureHeads));
    QCOMPARE(lines[0], QString("site,layer,head,recall,density,entropy"));
    QCOMPARE(lines[1], QString("blocks.0.attn,0,0,0.9,0.1,1"));
    QCOMPARE(lines[4], QString("blocks.0.attn,0,3,nan,0.1,1.15"));
    QTemporaryDir dir;
    const QString path = dir.filePath("stats.csv");
    write_stats_csv(trace, path.toStdString());
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(QString::fromUtf8(file.readAll()), csv);
    const std::string bad = dir.filePath("missing/dir/stats.csv").toStdString();
    try {
      write_stats_csv(trace, bad);
      QFAIL("no error for a folder that does not exist");
    } catch (const sparsescope::Error& e) {
      QVERIFY2(std::string(e.what()).find(bad) != std::string::npos, e.what());
    }
  }

  void settings_remember_recent_files_and_the_model() {
    QTemporaryDir dir;
    const QString ini = dir.filePath("viewer.ini");
    QStringList files;
    for (int i = 0; i < ViewerSettings::kMaxRecentFiles + 2; ++i) {
      files << dir.filePath(QString("f%1.png").arg(i));
      QFile f(files.back());
      QVERIFY(f.open(QIODevice::WriteOnly));
    }
    {
      ViewerSettings s(std::make_unique<QSettings>(ini, QSettings::IniFormat));
      for (const auto& f : files) s.add_recent_file(f);
      s.add_recent_file(files[5]);  // again: moves to the front
      s.set_run_settings({"vit_small_patch16_224", "/w/vit_s.safetensors", "dense", "cpu", "bf16"});
      s.set_colormap("magma");
      s.set_opacity(1.7);
    }
    QFile::remove(files[11]);
    ViewerSettings s(std::make_unique<QSettings>(ini, QSettings::IniFormat));
    const QStringList recent = s.recent_files();
    QCOMPARE(recent.front(), files[5]);
    QVERIFY(!recent.contains(files[11]));  // deleted since
    QCOMPARE(recent.size(), ViewerSettings::kMaxRecentFiles - 1);
    QCOMPARE(s.run_settings().weights, QString("/w/vit_s.safetensors"));
    QCOMPARE(s.run_settings().dtype, QString("bf16"));
    QCOMPARE(s.colormap(), QString("magma"));
    QCOMPARE(s.opacity(), 1.0);
  }

  void documents_open_images_and_traces() {
    const Document image = Document::open(QString(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png");
    QCOMPARE(image.kind(), Document::Kind::Image);
    QCOMPARE(image.frame_count(), 1);
    QVERIFY(image.frame(0).image.width > 0);
    QVERIFY(image.trace(0) == nullptr);

    QTemporaryDir dir;
    const QString path = dir.filePath("fixture.trace.safetensors");
    sv::save_trace(st::fixture_trace(), path.toStdString());
    const Document trace = Document::open(path);
    QCOMPARE(trace.kind(), Document::Kind::Trace);
    QVERIFY(trace.trace(0) != nullptr);
    QCOMPARE(trace.trace(0)->sites.size(), size_t(st::kFixtureLayers));
    QCOMPARE(trace.frame(0).image.width, int(st::kFixtureGrid * st::kFixturePixelsPerPatch));
  }

  void documents_that_cannot_be_read_name_the_file_data() {
    QTest::addColumn<QString>("name");
    QTest::addColumn<QByteArray>("bytes");
    QTest::newRow("image") << "broken.png" << QByteArray("not a png");
    QTest::newRow("trace") << "broken.safetensors" << QByteArray("\x08\0\0\0\0\0\0\0{}      ", 16);
    QTest::newRow("video") << "broken.mp4" << QByteArray("not a video");
    QTest::newRow("missing") << "missing.png" << QByteArray();
  }
  void documents_that_cannot_be_read_name_the_file() {
    QFETCH(QString, name);
    QFETCH(QByteArray, bytes);
    QTemporaryDir dir;
    const QString path = dir.filePath(name);
    if (!bytes.isEmpty()) {
      QFile f(path);
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write(bytes);
    }
    try {
      Document::open(path);
      QFAIL("no error");
    } catch (const sparsescope::Error& e) {
      QVERIFY2(QString(e.what()).contains(name), e.what());
    }
  }

  void model_runner_records_sparsifiner_as_topk_sites() {
    RunSettings settings = bundled_defaults();
    QVERIFY2(!settings.weights.isEmpty(), "the bundled default model is missing");
    settings.weights = QFileInfo(settings.weights).dir().filePath("sparsifiner_fmnist_k25.safetensors");
    settings.method = "sparsifiner";
    ModelRunner runner;
    int sites_seen = 0;
    const sv::Trace sparse = runner.record(settings, ankle_boot(), "ankle boot", -1, [&](int, int) { ++sites_seen; });
    QCOMPARE(sites_seen, 9);
    QCOMPARE(sparse.info.method, std::string("sparsifiner"));
    // The five most probable classes, named by the model card: the sample is an ankle boot.
    QCOMPARE(sparse.info.topk.size(), size_t(5));
    QCOMPARE(sparse.info.topk.front().label, std::string("Ankle boot"));
    QVERIFY(sparse.info.topk.front().score > sparse.info.topk.back().score);
    QCOMPARE(sparse.sites.size(), size_t(9));
    // 50 tokens, 13 kept keys per patch query, the class token's row dense.
    const float density = (50.0f + 49.0f * 13.0f) / 2500.0f;
    for (const auto& site : sparse.sites) {
      QCOMPARE(site.pattern, std::string("topk"));
      const at::Tensor recall = site.stats.select(1, sv::kRecall);
      QVERIFY2(at::isfinite(recall).all().item<bool>() && (recall > 0).all().item<bool>() &&
                   (recall <= 1).all().item<bool>(),
               site.name.c_str());
      QVERIFY2(at::allclose(site.stats.select(1, sv::kDensity), at::full({site.heads()}, density), 0, 1e-5),
               site.name.c_str());
    }
    // The same loaded model switched back to dense.
    settings.method = "dense";
    const sv::Trace dense = runner.record(settings, ankle_boot(), "ankle boot", -1);
    QCOMPARE(dense.info.method, std::string("dense"));
    QCOMPARE(dense.info.topk.front().label, std::string("Ankle boot"));
    for (const auto& site : dense.sites) QCOMPARE(site.pattern, std::string("dense"));
  }

  void model_runner_defaults_to_the_method_the_weights_were_trained_for() {
    const QString dense = bundled_defaults().weights;
    QVERIFY2(!dense.isEmpty(), "the bundled default model is missing");
    QCOMPARE(ModelRunner::default_method(dense), QString("dense"));
    QCOMPARE(ModelRunner::default_method(QFileInfo(dense).dir().filePath("sparsifiner_fmnist_k25.safetensors")),
             QString("sparsifiner"));
    QCOMPARE(ModelRunner::default_method("/no/such/weights.safetensors"), QString("dense"));
  }

  void model_runner_refuses_sparsifiner_on_dense_weights() {
    RunSettings settings = bundled_defaults();
    QVERIFY2(!settings.weights.isEmpty(), "the bundled default model is missing");
    settings.method = "sparsifiner";
    ModelRunner runner;
    try {
      runner.record(settings, ankle_boot(), "ankle boot", -1);
      QFAIL("no error");
    } catch (const sparsescope::Error& e) {
      QVERIFY2(QString(e.what()).contains("method") && QString(e.what()).contains("sparsifiner"), e.what());
    }
    // A method the viewer does not know is refused by name.
    settings.method = "bigbird";
    try {
      runner.record(settings, ankle_boot(), "ankle boot", -1);
      QFAIL("no error");
    } catch (const sparsescope::Error& e) {
      QVERIFY2(QString(e.what()).contains("bigbird"), e.what());
    }
  }

  void jobs_deliver_results_in_order_before_finishing() {
    JobRunner jobs;
    QStringList events;
    connect(&jobs, &JobRunner::finished, this, [&] { events << "finished"; });
    QSignalSpy progressed(&jobs, &JobRunner::progressed);
    QVERIFY(jobs.start("counting", [&events](JobRunner::Control& c) {
      for (int i = 0; i < 3; ++i) {
        c.progress(i + 1, 3, "steps");
        c.deliver([&events, i] { events << QString::number(i); });
      }
    }));
    QVERIFY(jobs.busy());
    QVERIFY(!jobs.start("second", [](JobRunner::Control&) {}));  // one at a time
    QTRY_VERIFY(!jobs.busy());
    QCOMPARE(events, (QStringList{"0", "1", "2", "finished"}));
    QCOMPARE(progressed.count(), 3);
    QCOMPARE(progressed.last().at(0).toInt(), 3);
  }

  void jobs_report_failures_and_cancellation() {
    JobRunner jobs;
    QSignalSpy failed(&jobs, &JobRunner::failed);
    QVERIFY(jobs.start("failing", [](JobRunner::Control&) { SPARSESCOPE_FAIL("cannot read 'x.png': truncated"); }));
    QTRY_COMPARE(failed.count(), 1);
    QCOMPARE(failed.front().at(0).toString(), QString("cannot read 'x.png': truncated"));

    QSignalSpy cancelled(&jobs, &JobRunner::cancelled);
    QSignalSpy finished(&jobs, &JobRunner::finished);
    auto gate = std::make_shared<QSemaphore>(0);
    QVERIFY(jobs.start("waiting", [gate](JobRunner::Control& c) {
      gate->acquire();  // until the test has cancelled
      c.progress(1, 2, "step");
      c.deliver([] { QFAIL("a cancelled job went on"); });
    }));
    jobs.cancel();
    gate->release();
    QTRY_COMPARE(cancelled.count(), 1);
    QCOMPARE(finished.count(), 0);
    QVERIFY(!jobs.busy());
  }
};

QTEST_MAIN(ViewerModels)
#include "test_viewer_models.moc"
