// The viewer's window as a user drives it, on the offscreen platform: open a fixture trace, select
// layer, head and query from code and by clicking, check the pixels, export, and run a real model
// (the ViT-Tiny fixture) on an image and on video frames.
#include <ATen/ATen.h>

#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileInfo>
#include <QListWidget>
#include <QLabel>
#include <QMimeData>
#include <QUrl>
#include <QFile>
#include <QMessageBox>
#include <QSettings>
#include <QTableView>
#include <QTemporaryDir>
#include <ATen/CPUGeneratorImpl.h>
#include <QtTest>
#include <memory>

#include "color_legend.h"
#include "compare_window.h"
#include "cross_window.h"
#include "document.h"
#include "head_grid_view.h"
#include "main_window.h"
#include "mask_panel.h"
#include "matrix_view.h"
#include "overlay_panel.h"
#include "overlay_view.h"
#include "run_panel.h"
#include "sparsescope/vision/dlgsanet.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/mae_reconstruct.h"
#include "sparsescope/vision/safetensors.h"
#include "sr_window.h"
#include "stats_csv.h"
#include "stats_panel.h"
#include "stats_table_model.h"
#include "timeline_view.h"
#include "token_grid.h"
#include "trace_model.h"
#include "view_options.h"
#include "image_probe.h"
#include "mae_small.h"
#include "viewer_fixture.h"
#include "viewer_settings.h"
#ifdef SPARSESCOPE_VIEWER_VIDEO
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>
#endif

namespace sv = sparsescope::vision;
namespace st = sparsescope::test;
using namespace sparsescope::viewer;

namespace {

using sparsescope::test::brightest_cell;

const QString kFixtures = SPARSESCOPE_FIXTURES_DIR;
const QString kChelsea = QString(SPARSESCOPE_SAMPLES_DIR) + "/chelsea.png";

RunSettings vit_tiny() {
  return {"vit_tiny_patch16_224", kFixtures + "/vit/vit_tiny_patch16_224.fp16.safetensors", "dense", "cpu", "fp32"};
}

// The overlay as it appears in a grab of the whole window.
QImage overlay_in_window(MainWindow& window) {
  const QImage shot = window.grab().toImage();
  OverlayView* view = window.overlay_panel()->view();
  return shot.copy(view->picture_rect().translated(view->mapTo(&window, QPoint(0, 0))));
}

QPoint centre_of_patch(OverlayView* view, int64_t row, int64_t col) {
  const QRect r = view->picture_rect();
  return {r.x() + static_cast<int>((col + 0.5) * r.width() / st::kFixtureGrid),
          r.y() + static_cast<int>((row + 0.5) * r.height() / st::kFixtureGrid)};
}

}  // namespace

class ViewerWindow : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY(dir_.isValid());
    trace_path_ = dir_.filePath("fixture.trace.safetensors");
    sv::save_trace(st::fixture_trace(), trace_path_.toStdString());
  }

  void init() {
    QFile::remove(dir_.filePath("viewer.ini"));
    settings_ = std::make_unique<ViewerSettings>(
        std::make_unique<QSettings>(dir_.filePath("viewer.ini"), QSettings::IniFormat));
    window_ = std::make_unique<MainWindow>(settings_.get());
    window_->show();
    QVERIFY(QTest::qWaitForWindowExposed(window_.get()));
  }

  void cleanup() {
    window_.reset();
    settings_.reset();
  }

  void overlay_maximum_sits_on_the_fixture_patch() {
    open_trace();
    QVERIFY(window_->overlay_panel()->prediction()->isHidden());  // the fixture trace stores no prediction
    window_->view_options()->set_colormap(sv::Colormap::Gray);
    window_->view_options()->set_opacity(1.0);
    TraceModel* model = window_->trace_model();
    for (const Selection s : {Selection{2, 0, MapKind::Head, 0}, Selection{1, 2, MapKind::Head, 0},
                              Selection{0, 3, MapKind::Head, 13}}) {
      model->select(s);
      QCOMPARE(brightest_cell(overlay_in_window(*window_), 5, 5), st::peak_patch(s.layer, s.head, s.query));
    }
  }

  void legend_gives_the_maps_values() {
    open_trace();
    TraceModel* model = window_->trace_model();
    model->select({1, 2, MapKind::Head, 0});
    const at::Tensor map = model->selected_map();
    const QStringList labels = window_->overlay_panel()->legend()->labels();
    QCOMPARE(labels.size(), 3);
    QCOMPARE(labels.front().toDouble(), QString::number(map.max().item<double>(), 'g', 3).toDouble());
    QCOMPARE(labels.back().toDouble(), QString::number(map.min().item<double>(), 'g', 3).toDouble());
  }

  void changing_head_changes_the_pixels() {
    open_trace();
    TraceModel* model = window_->trace_model();
    model->select({1, 0, MapKind::Head, 0});
    const QImage before = overlay_in_window(*window_);
    model->select_head(1);
    const QImage after = overlay_in_window(*window_);
    QCOMPARE(after.size(), before.size());
    QVERIFY(after != before);
    model->select_head(0);
    QCOMPARE(overlay_in_window(*window_), before);  // and back
  }

  void clicking_a_patch_selects_its_query() {
    open_trace();
    OverlayView* view = window_->overlay_panel()->view();
    QTest::mouseClick(view, Qt::LeftButton, {}, centre_of_patch(view, 3, 2));
    QCOMPARE(window_->trace_model()->selection().query, int64_t{1 + 3 * st::kFixtureGrid + 2});
    // The mask view highlights the query's row.
    QCOMPARE(window_->mask_panel()->mask_view()->highlighted_row(), 1 + 3 * int(st::kFixtureGrid) + 2);
  }

  void clicking_a_grid_tile_selects_layer_and_head() {
    open_trace();
    HeadGridView* grid = window_->head_grid();
    QVERIFY(grid->grid_layout().has_value());
    auto click = [grid](const GridCell& cell) {
      const QRect target = grid->picture_rect();
      const double scale = static_cast<double>(target.width()) / grid->picture().width();
      const QPoint c = grid->grid_layout()->tile_rect(cell).center();
      QTest::mouseClick(grid, Qt::LeftButton, {},
                        target.topLeft() + QPoint(static_cast<int>(c.x() * scale), static_cast<int>(c.y() * scale)));
    };
    click({MapKind::Head, 1, 3});
    QCOMPARE(window_->trace_model()->selection().layer, 1);
    QCOMPARE(window_->trace_model()->selection().head, 3);
    QCOMPARE(window_->trace_model()->selection().kind, MapKind::Head);
    click({MapKind::MeanOfHeads, 0, 0});
    QCOMPARE(window_->trace_model()->selection().layer, 0);
    QCOMPARE(window_->trace_model()->selection().kind, MapKind::MeanOfHeads);
    click({MapKind::Rollout, 0, 0});
    QCOMPARE(window_->trace_model()->selection().kind, MapKind::Rollout);
  }

  void clicking_a_mask_row_or_a_stats_cell_selects() {
    open_trace();
    MatrixView* mask = window_->mask_panel()->probs_view();
    const QPoint centre = mask->rect().center();
    const int row = static_cast<int>(std::floor(mask->to_cell(centre).y()));
    QTest::mouseClick(mask, Qt::LeftButton, {}, centre);
    QCOMPARE(window_->trace_model()->selection().query, int64_t{row});

    QTableView* table = window_->stats_panel()->table_view();
    const QModelIndex cell = table->model()->index(2, 1);
    QTest::mouseClick(table->viewport(), Qt::LeftButton, {}, table->visualRect(cell).center());
    QCOMPARE(window_->trace_model()->selection().layer, 2);
    QCOMPARE(window_->trace_model()->selection().head, 1);
  }

  void exports_png_and_csv() {
    open_trace();
    QString error;
    const QString png = dir_.filePath("overlay.png");
    QVERIFY2(window_->export_png(MainWindow::ExportView::Overlay, png, &error), qPrintable(error));
    QCOMPARE(QImage(png).size(), QSize(80, 80));
    QVERIFY(window_->export_png(MainWindow::ExportView::HeadGrid, dir_.filePath("grid.png"), &error));
    QVERIFY(window_->export_png(MainWindow::ExportView::Window, dir_.filePath("window.png"), &error));
    QCOMPARE(QImage(dir_.filePath("window.png")).size(), window_->size());
    const QString csv = dir_.filePath("stats.csv");
    QVERIFY2(window_->export_stats_csv(csv, &error), qPrintable(error));
    QFile file(csv);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll().toStdString(), stats_csv(st::fixture_trace()));

    const QString bad = dir_.filePath("missing/overlay.png");
    QVERIFY(!window_->export_png(MainWindow::ExportView::Overlay, bad, &error));
    QVERIFY2(error.contains(bad), qPrintable(error));
  }

  void dropping_a_file_opens_it() {
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(trace_path_)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(window_.get(), &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(window_.get(), &drop);
    QString error;
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    QCOMPARE(window_->document()->kind(), Document::Kind::Trace);
    QCOMPARE(settings_->recent_files().front(), QFileInfo(trace_path_).absoluteFilePath());
  }

  void a_bad_file_is_a_message_not_a_crash() {
    const QString bad = dir_.filePath("broken.safetensors");
    QFile f(bad);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("garbage that is no safetensors file");
    f.close();
    window_->open_file(bad);
    QString error;
    QVERIFY(!window_->wait_for_job(&error));
    QVERIFY2(error.contains("broken.safetensors"), qPrintable(error));
    QCOMPARE(window_->last_error(), error);
    QVERIFY(window_->document() == nullptr);
    const auto boxes = window_->findChildren<QMessageBox*>();
    QCOMPARE(boxes.size(), 1);
    QVERIFY(boxes.front()->isVisible());
    QVERIFY(boxes.front()->text().contains("broken.safetensors"));
    open_trace();  // and the window goes on working
  }

  void runs_a_model_on_an_image() {
    window_->open_file(kChelsea);
    QString error;
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    QCOMPARE(window_->document()->kind(), Document::Kind::Image);
    QVERIFY(window_->trace_model()->empty());
    QVERIFY(!window_->overlay_panel()->view()->picture().isNull());  // the photo before any run
    window_->run_panel()->set_settings(vit_tiny());
    window_->run_model(false);
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    TraceModel* model = window_->trace_model();
    QVERIFY(!model->empty());
    QCOMPARE(model->layers(), 12);
    QCOMPARE(model->max_heads(), 3);
    QCOMPARE(model->tokens(), int64_t{197});
    QCOMPARE(model->trace().info.model, std::string("vit_tiny_patch16_224"));
    QCOMPARE(window_->overlay_panel()->view()->picture().size(), QSize(224, 224));
    auto* table = qobject_cast<StatsTableModel*>(window_->stats_panel()->table_view()->model());
    QCOMPARE(table->rowCount(), 12);
    QCOMPARE(table->statistic(), sv::kEntropy);  // dense keeps everything: entropy tells heads apart
    QVERIFY(window_->document()->trace(0) != nullptr);
    QCOMPARE(settings_->run_settings().weights, vit_tiny().weights);  // remembered
    // Dense attention keeps every connection: density 1.
    const auto& stats = model->trace().sites[0].stats;
    QVERIFY(at::allclose(stats.select(1, sv::kDensity), at::ones({3})));
  }

  void runs_the_bundled_model_from_its_model_card() {
    // A fresh settings file defaults to the bundled Fashion-MNIST classifier, configured by its card.
    QCOMPARE(window_->run_panel()->settings().model, QString());
    QVERIFY(window_->run_panel()->settings().weights.endsWith("assets/models/vit_fmnist.safetensors"));
    window_->open_file(QString(SPARSESCOPE_SAMPLES_DIR) + "/fashion-mnist/00000_ankle_boot.png");
    QString error;
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    window_->run_model(false);
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    TraceModel* model = window_->trace_model();
    QCOMPARE(model->layers(), 9);
    QCOMPARE(model->max_heads(), 3);
    QCOMPARE(model->tokens(), int64_t{1 + 7 * 7});
    QCOMPARE(model->trace().info.model, std::string("vit_fmnist_patch4_28"));
    // The class the model predicts, named by its card, under the overlay.
    const QLabel* prediction = window_->overlay_panel()->prediction();
    QVERIFY(!prediction->isHidden());
    QVERIFY2(prediction->text().startsWith("Predicted: Ankle boot "), qPrintable(prediction->text()));
    // The gray picture the network saw, as RGB.
    const at::Tensor& image = model->trace().image;
    QCOMPARE(image.sizes().vec(), (std::vector<int64_t>{28, 28, 3}));
    QVERIFY(at::equal(image.select(2, 0), image.select(2, 2)));
  }

  void a_run_with_missing_weights_names_them() {
    window_->open_file(kChelsea);
    QString error;
    QVERIFY(window_->wait_for_job(&error));
    RunSettings settings = vit_tiny();
    settings.weights = dir_.filePath("nope.safetensors");
    window_->run_panel()->set_settings(settings);
    window_->run_model(false);
    QVERIFY(!window_->wait_for_job(&error));
    QVERIFY2(error.contains("weights") && error.contains("nope.safetensors"), qPrintable(error));
    QVERIFY(window_->trace_model()->empty());
  }

  // Super-resolution: LR, bicubic, SR and their difference at one size with one zoom; the recorded
  // kernels at a clicked pixel and the channel attention with its sparsity.
  void super_resolution_side_by_side_with_kernels() {
    QString error;
    QVERIFY(!window_->open_super_resolution("x", &error));  // nothing open yet
    QVERIFY2(error.contains("open an image"), qPrintable(error));
    at::manual_seed(0);
    sv::DLGSANet model(sv::dlgsanet_config("dlgsanet_tiny_x2"));
    sv::NamedTensors weights;
    for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value().detach());
    const QString path = dir_.filePath("tiny_x2.safetensors");
    sv::save_safetensors(path.toStdString(), weights, {{sv::kDlgsaCardKey, sv::dlgsanet_config_json(model->config())}});
    sv::Image image;
    image.width = 24;
    image.height = 18;
    image.pixels.resize(24 * 18 * 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>((i * 37) % 251);
    const QString picture = dir_.filePath("small.png");
    sv::write_png(picture.toStdString(), image);
    window_->open_file(picture);
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    QVERIFY(!window_->open_super_resolution(dir_.filePath("nope.safetensors"), &error));
    QVERIFY2(error.contains("nope.safetensors"), qPrintable(error));
    QVERIFY2(window_->open_super_resolution(path, &error), qPrintable(error));
    SrWindow* sr = window_->sr_window();
    QVERIFY(sr->isVisible());
    const SrComparison& c = sr->comparison();
    QCOMPARE(c.scale, int64_t{2});
    for (const QImage* picture : {&c.lr, &c.bicubic, &c.sr, &c.difference}) QCOMPARE(picture->size(), QSize(48, 36));
    QCOMPARE(c.lr.pixelColor(1, 1), c.lr.pixelColor(0, 0));  // LR pixels repeated 2 x 2
    QCOMPARE(c.trace.sites.size(), size_t{18});
    sr->view(2)->view_changed(4.0, QPointF(3, 5));  // a zoom in the SR view moves the others
    QCOMPARE(sr->view(0)->to_cell(QPointF(0, 0)), QPointF(3, 5));
    QCOMPARE(sr->view(3)->to_cell(QPointF(0, 0)), QPointF(3, 5));
    sr->select_site(0);  // an MHDLSA: the kernels at a pixel
    sr->select_cell(2 * 5 + 1, 2 * 7);  // LR pixel (5, 7)
    QVERIFY2(sr->map_caption().contains("kernel") && sr->map_caption().contains(QString::number(7 * 24 + 5)),
             qPrintable(sr->map_caption()));
    sr->select_head(3);
    QVERIFY2(sr->map_caption().contains("group 3"), qPrintable(sr->map_caption()));
    sr->select_site(1);  // a SparseGSA: the channel attention and how much of it the ReLU kept
    QVERIFY2(sr->map_caption().contains("non-zero"), qPrintable(sr->map_caption()));
    QCOMPARE(sr->map_view()->to_cell(sr->map_view()->to_widget(QPointF(1, 1))), QPointF(1, 1));
  }

  // A MAE trace (`sparsescope reconstruct --record`): the encoder's sites over the visible patches
  // beside the decoder's over all. A visible patch's query lights visible patches only; a removed
  // patch attends nowhere in the encoder, and the mask panel marks no row for it.
  void mae_encoder_over_the_visible_patches() {
    sv::Trace trace;
    const sv::MaeReconstruction r = record_mae(5, &trace);
    const QString path = dir_.filePath("mae.trace.safetensors");
    sv::save_trace(trace, path.toStdString());
    window_->open_file(path);
    QString error;
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    TraceModel* model = window_->trace_model();
    QCOMPARE(model->layers(), 3);
    QCOMPARE(model->tokens(), int64_t{65});
    const auto& visible = trace.info.layout.visible;
    int64_t removed = 0;
    while (r.mask[removed].item<float>() == 0) ++removed;
    model->select({0, 1, MapKind::Head, 1 + visible[3]});  // the encoder, a visible patch
    const at::Tensor map = model->selected_map();           // [8, 8]
    for (int64_t p = 0; p < 64; ++p) {
      const bool seen = std::find(visible.begin(), visible.end(), p) != visible.end();
      if (!seen) QCOMPARE(map[p / 8][p % 8].item<float>(), 0.0f);
    }
    QVERIFY(map.sum().item<float>() > 0.5f);
    QCOMPARE(window_->mask_panel()->mask_view()->highlighted_row(), 1 + 3);
    model->select_query(1 + removed);  // a removed patch: not among the encoder's tokens
    QCOMPARE(model->selected_map().abs().sum().item<float>(), 0.0f);
    QCOMPARE(window_->mask_panel()->mask_view()->highlighted_row(), -1);
    model->select_layer(2);  // the decoder sees every patch
    QVERIFY(model->selected_map().sum().item<float>() > 0.5f);
    QCOMPARE(window_->mask_panel()->mask_view()->highlighted_row(), static_cast<int>(1 + removed));
    model->select_layer(0);  // a click on the encoder's row 2 makes its patch the query
    window_->mask_panel()->mask_view()->row_clicked(2);
    QCOMPARE(model->selection().query, 1 + visible[1]);
  }

  // Two traces side by side: each one's class-token map at the chosen layer, and the mean attention
  // distance per layer of both in one plot (the MAE vs MAE-LUT comparison).
  void comparison_of_two_encoders() {
    QStringList paths;
    for (uint64_t seed : {5, 6}) {
      sv::Trace trace;
      record_mae(seed, &trace);
      paths << dir_.filePath(QString("mae%1.trace.safetensors").arg(seed));
      sv::save_trace(trace, paths.back().toStdString());
    }
    QString error;
    QVERIFY2(window_->open_comparison(paths, &error), qPrintable(error));
    CompareWindow* compare = window_->compare_window();
    QVERIFY(compare->isVisible());
    QCOMPARE(compare->series().size(), size_t{2});
    for (const auto& s : compare->series()) {
      QCOMPARE(s.layers.size(), size_t{3});  // two encoder blocks, one decoder block
      for (const double d : s.layers) QVERIFY(d > 0 && d < 10);
    }
    QVERIFY(compare->series()[0].layers[0] != compare->series()[1].layers[0]);
    QVERIFY(!compare->picture(0).isNull() && !compare->picture(1).isNull());
    const QImage first = compare->picture(0);
    compare->select_layer(2);
    QVERIFY(compare->picture(0) != first);
    // The plot draws both series in their colours.
    const QImage plot = compare->plot();
    int blue = 0, orange = 0;
    for (int y = 0; y < plot.height(); ++y) {
      for (int x = 0; x < plot.width(); ++x) {
        const QColor c = plot.pixelColor(x, y);
        blue += c == QColor(31, 119, 180);
        orange += c == QColor(255, 127, 14);
      }
    }
    QVERIFY(blue > 20 && orange > 20);
    QVERIFY(!window_->open_comparison({dir_.filePath("none.safetensors")}, &error));
    QVERIFY2(error.contains("none.safetensors"), qPrintable(error));
  }

  // A cross-attention trace (words and regions, as `sparsescope dclip --record` writes) opens in its
  // own window: a word colours the boxes by its attention, a click in a box colours the words.
  void cross_attention_between_words_and_regions() {
    sv::Trace t;
    t.info.model = "dclip_teacher";
    t.info.method = "dense";
    t.info.input = "cross.png";
    t.info.layout.kind = sv::kCrossLayout;
    t.info.layout.words = {"a", "red", "square"};
    t.info.layout.regions = {{0, 0, 30, 40}, {40, 10, 80, 50}};
    t.info.layout.segments = {{"text", 0, 3}, {"region", 3, 5}};
    t.image = at::full({60, 90, 3}, 40, at::kByte);
    auto site = [](const std::string& name, const std::string& from, const at::Tensor& probs) {
      sv::SiteTrace s;
      s.name = name;
      s.from = from;
      s.pattern = "dense";
      s.queries = probs.size(1);
      s.keys = probs.size(2);
      s.probs = probs;
      s.mask = at::ones({1, s.queries, s.keys});
      s.stats = at::zeros({2, sv::kStatColumns});
      return s;
    };
    // Head 0: word w puts 0.9 on region w % 2; head 1 is even. Region r puts 0.7 on word 2 - r.
    at::Tensor words = at::full({2, 3, 2}, 0.5f), regions = at::full({2, 2, 3}, 0.15f);
    for (int w = 0; w < 3; ++w) words[0][w][w % 2] = 0.9f, words[0][w][1 - w % 2] = 0.1f;
    for (int r = 0; r < 2; ++r) regions[0][r][2 - r] = 0.7f, regions[1][r][2 - r] = 0.7f;
    t.sites = {site("cross.text_to_image", sv::kCrossText, words), site("cross.image_to_text", sv::kCrossRegion, regions)};
    const QString path = dir_.filePath("cross.trace.safetensors");
    sv::save_trace(t, path.toStdString());
    window_->open_file(path);
    QString error;
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    CrossWindow* cross = window_->cross_window();
    QVERIFY(cross && cross->isVisible());
    QVERIFY(window_->trace_model()->empty());
    QCOMPARE(cross->words()->count(), 3);
    QCOMPARE(cross->heads(), 2);
    cross->select_head(0);
    cross->select_word(1);  // 'red' -> region 1 with 0.9
    QVERIFY2(cross->caption().startsWith("'red' attends (head 0): region 1 (40,10,80,50) 0.90"), qPrintable(cross->caption()));
    const QImage picture = cross->region_view()->picture();
    const QColor strongest = picture.pixelColor(40, 30), weakest = picture.pixelColor(0, 20);  // on the outlines
    const at::Tensor top = sv::apply_colormap(at::ones({1, 1}), sv::Colormap::Viridis, 0, 1)[0][0];
    const QColor top_colour(top[0].item<int>(), top[1].item<int>(), top[2].item<int>());
    QCOMPARE(strongest, top_colour);
    QVERIFY(weakest != strongest);
    // A click in region 0's box: the words by region 0's attention, word 2 the strongest.
    QTest::mouseClick(cross->region_view(), Qt::LeftButton, {},
                      cross->region_view()->to_widget(QPointF(15, 20)).toPoint());
    QVERIFY(!cross->selection().word);
    QCOMPARE(cross->selection().index, 0);
    QVERIFY2(cross->caption().contains("'square' 0.70"), qPrintable(cross->caption()));
    QCOMPARE(cross->words()->item(2)->background().color(), top_colour);
    // A click on the word list goes back to words.
    QTest::mouseClick(cross->words()->viewport(), Qt::LeftButton, {},
                      cross->words()->visualItemRect(cross->words()->item(0)).center());
    QVERIFY(cross->selection().word);
    QCOMPARE(cross->selection().index, 0);
    cross->select_head(-1);
    QVERIFY2(cross->caption().contains("mean of 2 heads"), qPrintable(cross->caption()));
  }

#ifdef SPARSESCOPE_VIEWER_VIDEO
  void video_frames_keep_their_traces() {
    const QString clip = dir_.filePath("clip.avi");
    {
      cv::VideoWriter writer(clip.toStdString(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(64, 48));
      QVERIFY(writer.isOpened());
      for (int i = 0; i < 4; ++i) {
        cv::Mat frame(48, 64, CV_8UC3, cv::Scalar(40, 40, 40));
        frame(cv::Rect(8 + 10 * i, 12, 16, 16)).setTo(cv::Scalar(255, 255, 255));  // a square moving right
        writer.write(frame);
      }
    }
    window_->open_file(clip);
    QString error;
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    QCOMPARE(window_->document()->kind(), Document::Kind::Video);
    QCOMPARE(window_->document()->frame_count(), 4);
    QVERIFY(window_->findChild<QDockWidget*>("timeline")->isVisible());
    window_->run_panel()->set_settings(vit_tiny());
    window_->timeline()->step(2);  // as the user steps
    QCOMPARE(window_->timeline()->current(), 2);
    window_->run_model(false);
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    QCOMPARE(window_->trace_model()->trace().info.frame, int64_t{2});
    window_->show_frame(1);
    QVERIFY(window_->trace_model()->empty());
    window_->show_frame(2);  // from the cache, no job
    QVERIFY(!window_->trace_model()->empty());
    QCOMPARE(window_->document()->traced_frames(), 1);
    window_->run_model(true);
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    QCOMPARE(window_->document()->traced_frames(), 4);
  }
#endif

 private:
  // A small random MAE on chelsea.png at mask ratio 0.75, recorded into `trace`.
  sv::MaeReconstruction record_mae(uint64_t seed, sv::Trace* trace) {
    sv::MaskedAutoencoder mae(st::mae_small("mae_viewer_test", /*decoder_depth=*/1));
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    mae->initialize(gen);
    return sv::reconstruct_mae(mae, sv::read_image(kChelsea.toStdString()), 0.75, 1, trace, "chelsea.png");
  }

  void open_trace() {
    window_->open_file(trace_path_);
    QString error;
    QVERIFY2(window_->wait_for_job(&error), qPrintable(error));
    QVERIFY(!window_->trace_model()->empty());
  }

  QTemporaryDir dir_;
  QString trace_path_;
  std::unique_ptr<ViewerSettings> settings_;
  std::unique_ptr<MainWindow> window_;
};

QTEST_MAIN(ViewerWindow)
#include "test_viewer_window.moc"
