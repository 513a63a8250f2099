#pragma once
// Video frames as RGB images (OpenCV's VideoCapture behind a pimpl; no OpenCV in this header).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sparsescope/vision/image.h"

namespace sparsescope::vision {

struct VideoInfo {
  std::string path;
  int width = 0;
  int height = 0;
  std::int64_t frame_count = 0;  // as the container reports it (an estimate for some formats)
  double fps = 0;                // 0 when the container does not say
};

/// Sequential reader yielding every `step`-th frame (indices 0, step, 2 * step, ...).
/// Throws sparsescope::Error naming the file when it is not a regular file, cannot be opened or holds
/// no decodable frame; a stream that breaks off later ends (next() returns false, ended_early()).
class VideoReader {
 public:
  explicit VideoReader(const std::string& path, int step = 1);
  ~VideoReader();
  VideoReader(VideoReader&&) noexcept;
  VideoReader& operator=(VideoReader&&) noexcept;
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const VideoInfo& info() const;
  int step() const;

  /// Decodes the next selected frame into `frame` (RGB) and its 0-based index in the stream into
  /// `index`; returns false at the end of the stream.
  bool next(Image& frame, std::int64_t* index = nullptr);

  /// After next() returned false: whether the stream stopped more than one frame short of the
  /// container's frame count (a truncated or damaged file; one frame of slack for containers whose
  /// count is an estimate).
  bool ended_early() const;
  /// Frames of the stream decoded or skipped so far.
  std::int64_t frames_passed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Every `step`-th frame of the video, at most `max_frames` of them (all when negative).
std::vector<Image> read_video_frames(const std::string& path, int step = 1, std::int64_t max_frames = -1);

}  // namespace sparsescope::vision
