// timm eval-transform parity: tests/fixtures/images/eval/ holds what the PIL re-implementation in
// scripts/fixtures/make_image_fixtures.py produces (bit-identical to torchvision 0.26 + Pillow 13
// on 376 cases, checked once when the script was written).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "files.h"
#include "image_cases.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

using sparsescope::test::kImages;
using sparsescope::test::read_cases;
using sparsescope::test::remove_tree;

namespace {

const fs::path kScript =
    fs::path(SPARSESCOPE_FIXTURES_DIR).parent_path().parent_path() / "scripts" / "fixtures" / "make_image_fixtures.py";

int max_abs_diff(const sv::Image& a, const sv::Image& b) {
  int d = 0;
  for (std::size_t i = 0; i < a.pixels.size(); ++i) d = std::max(d, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return d;
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// Runs the fixture script (PIL) on one file; false if Python or PIL is unavailable.
bool run_pil(const std::string& args) {
  const std::string cmd = std::string("'") + SPARSESCOPE_PYTHON + "' " + quoted(kScript) + " " + args + " 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace

TEST(PreprocessParity, MatchesTimmEvalFixtures) {
  const auto cases = read_cases(kImages / "eval" / "cases.txt");
  ASSERT_GE(cases.size(), 7u);
  int with_tensor = 0;
  for (const auto& c : cases) {
    ASSERT_EQ(c.size(), 6u);
    SCOPED_TRACE(c[4]);
    sv::EvalTransform t;
    t.img_size = std::stoi(c[1]);
    t.crop_pct = std::stod(c[2]);
    t.interpolation = sv::parse_interpolation(c[3]);
    const sv::Image input = sv::read_image((kImages / "inputs" / c[0]).string());
    const sv::Image expected = sv::read_image((kImages / "eval" / c[4]).string());

    const sv::Image ours = sv::eval_geometry(input, t);
    ASSERT_EQ(ours.width, t.img_size);
    ASSERT_EQ(ours.height, t.img_size);
    ASSERT_EQ(expected.width, t.img_size);
    const int d = max_abs_diff(ours, expected);
    std::printf("eval %-40s max abs diff %d/255\n", c[4].c_str(), d);
    EXPECT_EQ(d, 0);

    const at::Tensor x = sv::eval_transform(input, t);
    ASSERT_EQ(x.sizes(), (at::IntArrayRef{3, t.img_size, t.img_size}));
    ASSERT_EQ(x.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(x, sv::normalize_image(expected)));
    if (c[5] != "-") {
      // torch's float32 ToTensor + Normalize, bit for bit.
      std::ifstream in(kImages / "eval" / c[5], std::ios::binary);
      std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      ASSERT_EQ(bytes.size(), static_cast<std::size_t>(x.numel()) * sizeof(float));
      const at::Tensor ref = at::from_blob(bytes.data(), {3, t.img_size, t.img_size}, at::kFloat).clone();
      const double diff = (x - ref).abs().max().item<double>();
      std::printf("eval %-40s normalized tensor max abs diff %g\n", c[5].c_str(), diff);
      EXPECT_EQ(diff, 0.0);
      ++with_tensor;
    }
  }
  EXPECT_EQ(with_tensor, 1);
}

TEST(Preprocess, ScaleSizeFloorsLikeTimm) {
  auto scale = [](int size, double pct) {
    sv::EvalTransform t;
    t.img_size = size;
    t.crop_pct = pct;
    return t.scale_size();
  };
  EXPECT_EQ(scale(224, 0.875), 256);
  EXPECT_EQ(scale(224, 0.9), 248);   // 248.88...
  EXPECT_EQ(scale(224, 0.95), 235);  // 235.78...
  EXPECT_EQ(scale(384, 1.0), 384);
  EXPECT_EQ(scale(240, 0.875), 274);  // 274.28...
  EXPECT_EQ(scale(40, 1.25), 32);
  EXPECT_THROW(scale(224, 0.0), sparsescope::Error);
  EXPECT_THROW(scale(0, 0.875), sparsescope::Error);
  EXPECT_THROW(scale(224, -1.0), sparsescope::Error);
}

TEST(Preprocess, NormalizeUsesTorchvisionArithmetic) {
  sv::Image image;
  image.width = 2;
  image.height = 1;
  image.pixels = {0, 128, 255, 1, 2, 3};
  const at::Tensor x = sv::normalize_image(image);
  ASSERT_EQ(x.sizes(), (at::IntArrayRef{3, 1, 2}));
  const float v[2][3] = {{0, 128, 255}, {1, 2, 3}};
  for (int c = 0; c < 3; ++c)
    for (int px = 0; px < 2; ++px) {
      const float expected = (v[px][c] / 255.0f - sv::kImagenetMean[c]) / sv::kImagenetStd[c];
      EXPECT_EQ(x[c][0][px].item<float>(), expected) << c << "," << px;
    }
  EXPECT_THROW(sv::normalize_image(image, sv::kImagenetMean, {1.0f, 0.0f, 1.0f}), sparsescope::Error);
}

TEST(Preprocess, TensorConversionsAndBatch) {
  const sv::Image image = sv::read_image((kImages / "inputs" / "coffee_120x170.png").string());
  const at::Tensor hwc = sv::image_to_tensor(image);
  ASSERT_EQ(hwc.sizes(), (at::IntArrayRef{170, 120, 3}));
  EXPECT_EQ(hwc[5][7][2].item<int>(), image.pixel(7, 5)[2]);
  const sv::Image back = sv::tensor_to_image(hwc);
  EXPECT_EQ(back.pixels, image.pixels);
  // Non-contiguous input is fine.
  const sv::Image flipped = sv::tensor_to_image(hwc.flip({0}));
  EXPECT_EQ(flipped.pixel(7, 0)[1], image.pixel(7, 169)[1]);
  EXPECT_THROW(sv::tensor_to_image(hwc.to(at::kFloat)), sparsescope::Error);
  EXPECT_THROW(sv::tensor_to_image(hwc.permute({2, 0, 1})), sparsescope::Error);

  sv::EvalTransform t;
  t.img_size = 64;
  const sv::Image other = sv::read_image((kImages / "inputs" / "chelsea_200x133.png").string());
  const at::Tensor batch = sv::eval_transform_batch({image, other}, t);
  ASSERT_EQ(batch.sizes(), (at::IntArrayRef{2, 3, 64, 64}));
  EXPECT_TRUE(at::equal(batch[1], sv::eval_transform(other, t)));
  EXPECT_THROW(sv::eval_transform_batch({}, t), sparsescope::Error);
}

// Real photos from ../shared/data: stb's JPEG decoding against PIL's (measured, loose bound), and
// the eval transform of the stb-decoded pixels against PIL's on the same pixels (exact).
TEST(PreprocessSharedData, ImagenetPhotosMatchPil) {
  const fs::path dir = fs::path(SPARSESCOPE_SHARED_DATA_DIR) / "imagenet-sample";
  if (!fs::is_directory(dir)) GTEST_SKIP() << "shared data not found at " << dir << " (optional)";
  std::vector<fs::path> photos;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".JPEG") photos.push_back(e.path());
  std::sort(photos.begin(), photos.end());
  ASSERT_FALSE(photos.empty());
  const fs::path tmp = fs::temp_directory_path() / ("sparsescope_preprocess_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  if (!run_pil("--help > /dev/null")) {
    remove_tree(tmp);
    GTEST_SKIP() << "Python with Pillow not available at " << SPARSESCOPE_PYTHON;
  }
  const std::size_t count = std::min<std::size_t>(photos.size(), 8);
  double worst_mean = 0;
  int worst_max = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const fs::path& photo = photos[i * (photos.size() / count)];
    SCOPED_TRACE(photo.filename().string());
    const sv::Image ours = sv::read_image(photo.string());
    ASSERT_TRUE(run_pil("--convert-rgb " + quoted(photo) + " " + quoted(tmp / "pil.png")));
    const sv::Image pil = sv::read_image((tmp / "pil.png").string());
    ASSERT_EQ(ours.width, pil.width);
    ASSERT_EQ(ours.height, pil.height);
    double mean = 0;
    for (std::size_t k = 0; k < ours.pixels.size(); ++k) mean += std::abs(int(ours.pixels[k]) - int(pil.pixels[k]));
    mean /= static_cast<double>(ours.pixels.size());
    const int jpeg_max = max_abs_diff(ours, pil);
    worst_mean = std::max(worst_mean, mean);
    worst_max = std::max(worst_max, jpeg_max);

    sv::write_png((tmp / "stb.png").string(), ours);
    sv::EvalTransform t;
    t.interpolation = i % 2 ? sv::Interpolation::Bilinear : sv::Interpolation::Bicubic;
    ASSERT_TRUE(run_pil("--eval-transform " + quoted(tmp / "stb.png") + " " + quoted(tmp / "eval.png") +
                        " --img-size 224 --crop-pct 0.875 --interpolation " + sv::to_string(t.interpolation)));
    const int d = max_abs_diff(sv::eval_geometry(ours, t), sv::read_image((tmp / "eval.png").string()));
    std::printf("%-40s %4dx%-4d jpeg stb-vs-PIL max %2d mean %.3f | eval (%s) max abs diff %d/255\n",
                photo.filename().string().c_str(), ours.width, ours.height, jpeg_max, mean,
                sv::to_string(t.interpolation), d);
    EXPECT_EQ(d, 0);
  }
  std::printf("stb vs PIL JPEG decoding over %zu ImageNet photos: worst mean %.3f, worst max %d levels\n", count,
              worst_mean, worst_max);
  EXPECT_LE(worst_mean, 1.0);
  remove_tree(tmp);
}
