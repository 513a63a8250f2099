#include "document.h"

#include <QFileInfo>
#include <algorithm>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/preprocess.h"
#ifdef SPARSESCOPE_VIEWER_VIDEO
#include "sparsescope/vision/video.h"
#endif

namespace sparsescope::viewer {

namespace {

const QStringList kVideoSuffixes{"mp4", "avi", "mov", "mkv", "webm", "m4v"};
const QStringList kImageSuffixes{"png", "jpg", "jpeg", "bmp", "gif"};

QString suffix(const QString& path) { return QFileInfo(path).suffix().toLower(); }

}  // namespace

bool Document::is_video(const QString& path) { return kVideoSuffixes.contains(suffix(path)); }

bool Document::is_trace(const QString& path) { return suffix(path) == "safetensors"; }

QString Document::file_filter() {
  QStringList patterns{"*.safetensors"};
  for (const auto& s : kImageSuffixes + kVideoSuffixes) patterns << "*." + s;
  return QString("Images, videos and traces (%1);;Traces (*.safetensors);;All files (*)").arg(patterns.join(' '));
}

int Document::traced_frames() const {
  return static_cast<int>(std::count_if(traces_.begin(), traces_.end(), [](const auto& t) { return t != nullptr; }));
}

Document Document::open(const QString& path, const std::function<void(int64_t, int64_t)>& progress) {
  const std::string file = path.toStdString();
  Document doc;
  doc.path_ = path;
  if (is_trace(path)) {
    auto trace = std::make_shared<const vision::Trace>(vision::load_trace(file));
    doc.kind_ = Kind::Trace;
    Frame frame;
    if (trace->image.defined() && trace->image.numel() > 0) frame.image = vision::tensor_to_image(trace->image);
    frame.index = trace->info.frame;
    doc.frames_.push_back(std::move(frame));
    doc.traces_.push_back(std::move(trace));
    return doc;
  }
  if (is_video(path)) {
#ifdef SPARSESCOPE_VIEWER_VIDEO
    doc.kind_ = Kind::Video;
    // Probe the size first to choose a step that keeps the frames within the memory budget.
    int step = 1;
    int64_t expected = 0;
    {
      const vision::VideoReader probe(file);
      const auto& info = probe.info();
      const int64_t frame_bytes = int64_t{info.width} * info.height * 3;
      const int64_t total = std::max<int64_t>(info.frame_count, 1);
      step = static_cast<int>(std::max<int64_t>(1, (total * frame_bytes + kVideoBudgetBytes - 1) / kVideoBudgetBytes));
      expected = (total + step - 1) / step;
      doc.fps_ = info.fps / step;  // of the frames kept
    }
    vision::VideoReader video(file, step);
    Frame frame;
    while (video.next(frame.image, &frame.index)) {
      doc.frames_.push_back(frame);
      if (progress) progress(static_cast<int64_t>(doc.frames_.size()), expected);
      if (static_cast<int64_t>(doc.frames_.size()) * frame.image.pixels.size() > kVideoBudgetBytes) break;
    }
    doc.traces_.resize(doc.frames_.size());
    return doc;
#else
    SPARSESCOPE_FAIL("cannot open '", file, "': this build of the viewer reads no videos (built without OpenCV)");
#endif
  }
  doc.kind_ = Kind::Image;
  doc.frames_.push_back({vision::read_image(file), -1});
  doc.traces_.resize(1);
  return doc;
}

}  // namespace sparsescope::viewer
