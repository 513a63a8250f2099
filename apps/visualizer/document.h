#pragma once
// What the user opened: an image, a video (its frames, decoded once) or a recorded trace, with the
// trace recorded for each frame so far (a cache: revisiting a frame shows its trace at once).
// Widget-free; opening runs on the job thread.
#include <QString>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sparsescope/vision/image.h"
#include "sparsescope/vision/trace.h"

namespace sparsescope::viewer {

struct Frame {
  vision::Image image;  // empty for a trace opened without its input image
  int64_t index = -1;   // frame index in the video stream; -1 for still images
};

class Document {
 public:
  enum class Kind { Image, Video, Trace };

  /// Video frames are kept in memory up to this many bytes; longer videos are sampled evenly.
  static constexpr int64_t kVideoBudgetBytes = int64_t{512} << 20;

  /// Reads `path`: a trace (.safetensors), a video (.mp4 .avi .mov .mkv .webm .m4v) or an image.
  /// `progress(done, total)` is called per decoded video frame and may throw to stop. Throws
  /// sparsescope::Error naming the file and the cause.
  static Document open(const QString& path, const std::function<void(int64_t, int64_t)>& progress = {});
  static bool is_video(const QString& path);
  static bool is_trace(const QString& path);
  /// The file dialog's filter for everything open() reads.
  static QString file_filter();

  Kind kind() const { return kind_; }
  const QString& path() const { return path_; }
  int frame_count() const { return static_cast<int>(frames_.size()); }
  const Frame& frame(int i) const { return frames_.at(i); }
  /// Frames per second of the kept frames (0 when the container does not say).
  double fps() const { return fps_; }

  /// The trace recorded for frame `i`, or nullptr.
  std::shared_ptr<const vision::Trace> trace(int i) const { return traces_.at(i); }
  void set_trace(int i, std::shared_ptr<const vision::Trace> trace) { traces_.at(i) = std::move(trace); }
  int traced_frames() const;

 private:
  Kind kind_ = Kind::Image;
  QString path_;
  std::vector<Frame> frames_;
  std::vector<std::shared_ptr<const vision::Trace>> traces_;  // one per frame
  double fps_ = 0;
};

}  // namespace sparsescope::viewer
