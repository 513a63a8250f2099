// Video frames through VideoReader: a synthetic clip written at test time (no binary fixture),
// plus the real clips in ../shared/data/video when present.
#include <gtest/gtest.h>
#include <unistd.h>

#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "files.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/video.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

using sparsescope::test::remove_tree;

namespace {

constexpr int kFrames = 12, kWidth = 64, kHeight = 48;

// Frame i is solid RGB (200, 20 + 15 i, 10): red high and blue low tell RGB from BGR, green
// identifies the frame.
int green_of(int i) { return 20 + 15 * i; }

class VideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sparsescope_video_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    clip_ = (dir_ / "clip.avi").string();
    cv::VideoWriter writer(clip_, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10.0, cv::Size(kWidth, kHeight));
    ASSERT_TRUE(writer.isOpened()) << "OpenCV cannot write MJPG AVI";
    for (int i = 0; i < kFrames; ++i) writer.write(cv::Mat(kHeight, kWidth, CV_8UC3, cv::Scalar(10, green_of(i), 200)));
    writer.release();
  }
  void TearDown() override { remove_tree(dir_); }

  fs::path dir_;
  std::string clip_;
};

void expect_frame(const sv::Image& frame, int i) {
  ASSERT_EQ(frame.width, kWidth);
  ASSERT_EQ(frame.height, kHeight);
  const std::uint8_t* p = frame.pixel(kWidth / 2, kHeight / 2);
  EXPECT_NEAR(p[0], 200, 4) << "red, frame " << i;
  EXPECT_NEAR(p[1], green_of(i), 4) << "green, frame " << i;
  EXPECT_NEAR(p[2], 10, 4) << "blue, frame " << i;
}

template <typename Fn>
void expect_error(Fn&& fn, const std::string& part) {
  try {
    fn();
    ADD_FAILURE() << "no sparsescope::Error thrown; expected one mentioning '" << part << "'";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

}  // namespace

TEST_F(VideoTest, InfoAndEveryFrameInRgb) {
  sv::VideoReader reader(clip_);
  EXPECT_EQ(reader.info().path, clip_);
  EXPECT_EQ(reader.info().width, kWidth);
  EXPECT_EQ(reader.info().height, kHeight);
  EXPECT_EQ(reader.info().frame_count, kFrames);
  EXPECT_NEAR(reader.info().fps, 10.0, 1e-6);
  sv::Image frame;
  std::int64_t index = -1;
  int n = 0;
  while (reader.next(frame, &index)) {
    EXPECT_EQ(index, n);
    expect_frame(frame, n);
    ++n;
  }
  EXPECT_EQ(n, kFrames);
  EXPECT_FALSE(reader.next(frame));  // stays at the end
  EXPECT_FALSE(reader.ended_early());
  EXPECT_EQ(reader.frames_passed(), kFrames);
}

TEST_F(VideoTest, ADamagedStreamEndsEarlyAndSaysSo) {
  // Zeros over the middle of the file: the container still announces every frame.
  std::string bytes;
  {
    std::ifstream in(clip_, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() / 2),
            bytes.begin() + static_cast<std::ptrdiff_t>(bytes.size() * 9 / 10), '\0');
  const std::string damaged = (dir_ / "damaged.avi").string();
  std::ofstream(damaged, std::ios::binary) << bytes;
  sv::VideoReader reader(damaged);
  EXPECT_EQ(reader.info().frame_count, kFrames);
  sv::Image frame;
  int n = 0;
  while (reader.next(frame)) ++n;
  EXPECT_GE(n, 1);
  EXPECT_LT(n + 1, kFrames);
  EXPECT_TRUE(reader.ended_early());
}

TEST_F(VideoTest, EveryNthFrame) {
  for (int step : {2, 5, 11, 12, 100}) {
    SCOPED_TRACE(step);
    sv::VideoReader reader(clip_, step);
    EXPECT_EQ(reader.step(), step);
    std::vector<std::int64_t> indices;
    sv::Image frame;
    std::int64_t index = 0;
    while (reader.next(frame, &index)) {
      indices.push_back(index);
      expect_frame(frame, static_cast<int>(index));
    }
    std::vector<std::int64_t> expected;
    for (int i = 0; i < kFrames; i += step) expected.push_back(i);
    EXPECT_EQ(indices, expected);
  }
  const auto frames = sv::read_video_frames(clip_, 3, 2);
  ASSERT_EQ(frames.size(), 2u);
  expect_frame(frames[1], 3);
  EXPECT_EQ(sv::read_video_frames(clip_, 4).size(), 3u);
}

TEST_F(VideoTest, BadFilesGiveErrorsNamingTheFile) {
  const std::string missing = (dir_ / "missing.mp4").string();
  expect_error([&] { sv::VideoReader r(missing); }, "cannot open video '" + missing + "': No such file");
  const std::string empty = (dir_ / "empty.mp4").string();
  std::ofstream(empty).close();
  expect_error([&] { sv::VideoReader r(empty); }, "video '" + empty + "': empty file");
  expect_error([&] { sv::VideoReader r(dir_.string()); }, "is a folder, not a regular file");
  expect_error([&] { sv::VideoReader r(clip_, 0); }, "step must be >= 1");

  const std::string garbage = (dir_ / "garbage.mp4").string();
  {
    std::ofstream out(garbage, std::ios::binary);
    unsigned state = 12345;
    for (int i = 0; i < 4096; ++i) {
      state = state * 1103515245u + 12345u;
      out.put(static_cast<char>(state >> 16));
    }
  }
  expect_error([&] { sv::VideoReader r(garbage); }, "video '" + garbage + "'");

  // A clip cut in the middle either fails to open or ends early, never crashes.
  const std::string cut = (dir_ / "cut.avi").string();
  {
    std::ifstream in(clip_, std::ios::binary);
    std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  try {
    sv::VideoReader reader(cut);
    sv::Image frame;
    std::size_t frames = 0;
    while (reader.next(frame)) ++frames;
    EXPECT_LT(frames, static_cast<std::size_t>(kFrames));
    EXPECT_EQ(reader.ended_early(), static_cast<std::int64_t>(frames) + 1 < reader.info().frame_count);
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
  }
}

TEST(VideoSharedData, RealClips) {
  const fs::path dir = fs::path(SPARSESCOPE_SHARED_DATA_DIR) / "video";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "shared data not found at " << dir << " (optional)";
  int clips = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".mp4") continue;
    SCOPED_TRACE(e.path().string());
    sv::VideoReader reader(e.path().string(), 10);
    const sv::VideoInfo info = reader.info();
    EXPECT_GT(info.frame_count, 0);
    EXPECT_GT(info.fps, 0);
    EXPECT_GT(info.width, 0);
    sv::Image frame;
    std::int64_t index = 0, n = 0;
    while (reader.next(frame, &index)) {
      EXPECT_EQ(index, n * 10);
      EXPECT_EQ(frame.width, info.width);
      EXPECT_EQ(frame.height, info.height);
      ++n;
    }
    // The container's frame count is an estimate; the stream may hold a frame more or less.
    EXPECT_NEAR(static_cast<double>(n), std::ceil(info.frame_count / 10.0), 1.0);
    EXPECT_FALSE(reader.ended_early()) << reader.frames_passed() << " of " << info.frame_count << " frames";
    std::printf("%s: %dx%d, %lld frames at %.2f fps, read %lld with step 10\n", e.path().filename().c_str(),
                info.width, info.height, static_cast<long long>(info.frame_count), info.fps,
                static_cast<long long>(n));
    ++clips;
  }
  EXPECT_GT(clips, 0);
}
