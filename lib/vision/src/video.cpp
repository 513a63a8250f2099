// Video decoding through OpenCV's VideoCapture (FFmpeg/GStreamer backends as the system provides).
// OpenCV reports failure by return values in some places and by cv::Exception in others, and a
// broken stream usually just ends early; every path here becomes either sparsescope::Error with
// the file name or a clean end of stream.
#include "sparsescope/vision/video.h"

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <cstring>

#include "regular_file.h"
#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {
namespace {

Image to_rgb(const cv::Mat& mat, const std::string& path) {
  SPARSESCOPE_CHECK(mat.depth() == CV_8U, "video '", path, "': unsupported frame depth ", mat.depth(),
                    " (expected 8-bit)");
  SPARSESCOPE_CHECK(static_cast<std::size_t>(mat.cols) * static_cast<std::size_t>(mat.rows) <= kMaxImagePixels,
                    "video '", path, "': frame of ", mat.cols, " x ", mat.rows, " pixels exceeds the limit of ",
                    kMaxImagePixels, " pixels");
  cv::Mat rgb;
  switch (mat.channels()) {
    case 1: cv::cvtColor(mat, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(mat, rgb, cv::COLOR_BGR2RGB); break;  // VideoCapture delivers BGR
    case 4: cv::cvtColor(mat, rgb, cv::COLOR_BGRA2RGB); break;
    default: SPARSESCOPE_FAIL("video '", path, "': unsupported frame with ", mat.channels(), " channels");
  }
  Image image;
  image.width = rgb.cols;
  image.height = rgb.rows;
  image.source_channels = mat.channels();
  image.pixels.resize(image.row_bytes() * static_cast<std::size_t>(image.height));
  for (int y = 0; y < rgb.rows; ++y) std::memcpy(image.pixel(0, y), rgb.ptr<std::uint8_t>(y), image.row_bytes());
  return image;
}

// OpenCV's backends log their own view of a failure (FFmpeg's "moov atom not found", GStreamer's
// pipeline warnings) before ours, which names the file; they stay quiet unless the user asked for
// them (OPENCV_LOG_LEVEL or OPENCV_FFMPEG_LOGLEVEL set). FFmpeg's level is read once, at first use.
class QuietBackends {
 public:
  QuietBackends() {
    static const int ffmpeg_quiet = ::setenv("OPENCV_FFMPEG_LOGLEVEL", "-8", /*overwrite=*/0);  // AV_LOG_QUIET
    (void)ffmpeg_quiet;
    if (!std::getenv("OPENCV_LOG_LEVEL")) previous_ = cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  }
  ~QuietBackends() {
    if (previous_) cv::utils::logging::setLogLevel(*previous_);
  }
  QuietBackends(const QuietBackends&) = delete;
  QuietBackends& operator=(const QuietBackends&) = delete;

 private:
  std::optional<cv::utils::logging::LogLevel> previous_;
};

}  // namespace

struct VideoReader::Impl {
  cv::VideoCapture capture;
  VideoInfo info;
  int step = 1;
  std::int64_t next_index = 0;  // stream index of the next frame VideoCapture will deliver
  bool have_pending = false;    // frame 0, decoded at open time to prove the stream is readable
  Image pending;
  bool ended = false;

  // Decodes the frame at next_index; false at the end of the stream.
  bool read(Image& frame) {
    cv::Mat mat;
    try {
      if (!capture.read(mat) || mat.empty()) return false;
    } catch (const cv::Exception& e) {
      SPARSESCOPE_FAIL("video '", info.path, "': decoding frame ", next_index, " failed (OpenCV: ", e.what(), ")");
    }
    ++next_index;
    frame = to_rgb(mat, info.path);
    return true;
  }

  bool skip() {
    try {
      if (!capture.grab()) return false;
    } catch (const cv::Exception& e) {
      SPARSESCOPE_FAIL("video '", info.path, "': decoding frame ", next_index, " failed (OpenCV: ", e.what(), ")");
    }
    ++next_index;
    return true;
  }
};

VideoReader::VideoReader(const std::string& path, int step) : impl_(std::make_unique<Impl>()) {
  SPARSESCOPE_CHECK(step >= 1, "video '", path, "': frame step must be >= 1, got ", step);
  io::require_regular_file(path, "video");
  struct stat st {};
  SPARSESCOPE_CHECK(::stat(path.c_str(), &st) == 0 && st.st_size > 0, "video '", path, "': empty file");
  impl_->step = step;
  impl_->info.path = path;
  try {
    const QuietBackends quiet;
    impl_->capture.open(path, cv::CAP_ANY);
  } catch (const cv::Exception& e) {
    SPARSESCOPE_FAIL("video '", path, "': cannot open (OpenCV: ", e.what(), ")");
  }
  SPARSESCOPE_CHECK(impl_->capture.isOpened(), "video '", path,
                    "': cannot open (not a video, corrupt, or a codec no OpenCV backend here supports)");
  const double count = impl_->capture.get(cv::CAP_PROP_FRAME_COUNT);
  const double fps = impl_->capture.get(cv::CAP_PROP_FPS);
  impl_->info.frame_count = std::isfinite(count) && count > 0 ? static_cast<std::int64_t>(count) : 0;
  impl_->info.fps = std::isfinite(fps) && fps > 0 ? fps : 0;
  SPARSESCOPE_CHECK(impl_->read(impl_->pending), "video '", path, "': opened, but no frame could be decoded");
  impl_->have_pending = true;
  // The decoded frame is authoritative; container headers can disagree with the stream.
  impl_->info.width = impl_->pending.width;
  impl_->info.height = impl_->pending.height;
}

VideoReader::~VideoReader() = default;
VideoReader::VideoReader(VideoReader&&) noexcept = default;
VideoReader& VideoReader::operator=(VideoReader&&) noexcept = default;

const VideoInfo& VideoReader::info() const { return impl_->info; }
std::int64_t VideoReader::frames_passed() const { return impl_->next_index; }
bool VideoReader::ended_early() const {
  const Impl& s = *impl_;
  return s.ended && s.info.frame_count > 0 && s.next_index + 1 < s.info.frame_count;
}
int VideoReader::step() const { return impl_->step; }

bool VideoReader::next(Image& frame, std::int64_t* index) {
  Impl& s = *impl_;
  if (s.ended) return false;
  if (s.have_pending) {
    s.have_pending = false;
    frame = std::move(s.pending);
    s.pending = Image{};
    if (index) *index = 0;
    return true;
  }
  // The previous selected frame was next_index - 1; skip to the next multiple of step.
  while (s.next_index % s.step != 0) {
    if (!s.skip()) {
      s.ended = true;
      return false;
    }
  }
  const std::int64_t at = s.next_index;
  if (!s.read(frame)) {
    s.ended = true;
    return false;
  }
  if (index) *index = at;
  return true;
}

std::vector<Image> read_video_frames(const std::string& path, int step, std::int64_t max_frames) {
  VideoReader reader(path, step);
  std::vector<Image> frames;
  Image frame;
  while ((max_frames < 0 || static_cast<std::int64_t>(frames.size()) < max_frames) && reader.next(frame)) {
    frames.push_back(std::move(frame));
  }
  return frames;
}

}  // namespace sparsescope::vision
