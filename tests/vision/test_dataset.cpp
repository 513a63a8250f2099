// Dataset readers: IDX (plain and gzip, hardened), Fashion-MNIST, ImageFolder, and the pixels a
// model is fed (vit_input), on the fixtures of scripts/fixtures/make_dataset_fixtures.py.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/datasets.h"
#include "sparsescope/vision/idx.h"
#include "sparsescope/vision/image.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/vit_input.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(SPARSESCOPE_FIXTURES_DIR) / "datasets";

// The fixture formula: pixel (y, x) of image n.
at::Tensor expected_images(int64_t count) {
  const auto n = at::arange(count, at::kLong).view({count, 1, 1});
  const auto y = at::arange(8, at::kLong).view({1, 8, 1});
  const auto x = at::arange(8, at::kLong).view({1, 1, 8});
  return (37 * n + 11 * y + 5 * x + 3).remainder(256).to(at::kByte);
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// Asserts that `f` throws sparsescope::Error whose message holds every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one mentioning " << parts.front();
  } catch (const sparsescope::Error& e) {
    for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

sv::ViTConfig tiny_config(int64_t size, int64_t channels) {
  sv::ViTConfig c = sv::vit_config("vit_tiny_patch16_224");
  c.name = "tiny";
  c.img_size = size;
  c.patch_size = 4;
  c.in_chans = channels;
  c.eval.img_size = static_cast<int>(size);
  c.eval.crop_pct = 1.0;
  return c;
}

using TempDir = sparsescope::test::TempDirTest;

}  // namespace

TEST(Idx, ReadsGzipAndPlainFiles) {
  const at::Tensor gz = sv::read_idx((kData / "idx" / "train-images-idx3-ubyte.gz").string());
  EXPECT_EQ(gz.scalar_type(), at::kByte);
  EXPECT_EQ(gz.sizes(), at::IntArrayRef({6, 8, 8}));
  EXPECT_TRUE(gz.equal(expected_images(6)));
  const at::Tensor plain = sv::read_idx((kData / "idx" / "t10k-images-idx3-ubyte").string());
  EXPECT_TRUE(plain.equal(expected_images(4)));
  const at::Tensor labels = sv::read_idx((kData / "idx" / "train-labels-idx1-ubyte.gz").string());
  EXPECT_TRUE(labels.equal(at::tensor({3, 0, 9, 3, 7, 1}, at::kByte)));
}

TEST(Idx, ConvertsBigEndianTypes) {
  const at::Tensor i16 = sv::read_idx((kData / "idx_types" / "int16.idx").string());
  EXPECT_EQ(i16.scalar_type(), at::kShort);
  EXPECT_TRUE(i16.equal((at::arange(6, at::kShort) * 150 - 300).view({2, 3})));
  const at::Tensor f32 = sv::read_idx((kData / "idx_types" / "float32.idx").string());
  EXPECT_EQ(f32.scalar_type(), at::kFloat);
  EXPECT_TRUE(f32.equal(at::tensor({-1.0f, -0.5f, 0.0f, 0.5f})));
}

TEST(Idx, RejectsMalformedFilesNamingThem) {
  const auto good = read_bytes(kData / "idx" / "t10k-images-idx3-ubyte");  // 16-byte header + 256
  auto parse = [](std::vector<std::uint8_t> bytes) {
    return [bytes] { sv::parse_idx(bytes.data(), bytes.size(), "bad.idx"); };
  };
  auto with = [&](std::size_t at, std::uint8_t value) {
    auto b = good;
    b[at] = value;
    return b;
  };
  expect_error(parse(with(0, 1)), {"bad.idx", "not an IDX file"});
  expect_error(parse(with(2, 0x0a)), {"bad.idx", "unknown IDX element type 0xa"});
  expect_error(parse(with(3, 0)), {"bad.idx", "rank 0"});
  expect_error(parse({good.begin(), good.begin() + 10}), {"bad.idx", "header", "truncated"});
  expect_error(parse({good.begin(), good.end() - 1}), {"bad.idx", "needs 256 bytes", "has 255", "truncated"});
  auto longer = good;
  longer.push_back(0);
  expect_error(parse(longer), {"bad.idx", "1 trailing bytes"});
  auto huge = good;
  for (std::size_t i = 4; i < 16; ++i) huge[i] = 0xff;  // three dimensions of 2^32 - 1
  expect_error(parse(huge), {"bad.idx", "exceeds"});
  expect_error(parse({0, 0}), {"bad.idx", "truncated"});
}

TEST(Idx, RejectsCorruptGzip) {
  const auto good = read_bytes(kData / "idx" / "train-images-idx3-ubyte.gz");
  auto parse = [](std::vector<std::uint8_t> bytes) {
    return [bytes] { sv::parse_idx(bytes.data(), bytes.size(), "bad.gz"); };
  };
  auto crc = good;
  crc[crc.size() - 8] ^= 0xff;  // the trailer's CRC-32
  expect_error(parse(crc), {"bad.gz", "CRC-32 mismatch"});
  auto size = good;
  size[size.size() - 4] ^= 0x01;  // the trailer's ISIZE, one less or more than the data
  expect_error(parse(size), {"bad.gz"});
  expect_error(parse({good.begin(), good.begin() + good.size() / 2}), {"bad.gz"});
  auto method = good;
  method[2] = 7;
  expect_error(parse(method), {"bad.gz", "compression method 7"});
  auto name = good;
  name.resize(20);  // inside the file name of the header: no terminator before the trailer
  expect_error(parse(name), {"bad.gz"});
}

TEST(Idx, MissingFileIsNamed) { expect_error([] { sv::read_idx("/no/such/file.idx"); }, {"/no/such/file.idx"}); }

TEST(FashionMnist, LoadsBothSplitsFromIdxFiles) {
  const auto train = sv::load_fashion_mnist((kData / "idx").string(), sv::Split::Train);
  EXPECT_EQ(train.images.sizes(), at::IntArrayRef({6, 1, 8, 8}));
  EXPECT_TRUE(train.images.squeeze(1).equal(expected_images(6)));
  EXPECT_TRUE(train.labels.equal(at::tensor({3, 0, 9, 3, 7, 1}, at::kLong)));
  EXPECT_EQ(train.classes, sv::fashion_mnist_classes());
  EXPECT_EQ(train.classes.at(9), "Ankle boot");
  const auto test = sv::load_fashion_mnist((kData / "idx").string(), sv::Split::Test);
  EXPECT_EQ(test.size(), 4);
  EXPECT_TRUE(test.labels.equal(at::tensor({2, 5, 0, 9}, at::kLong)));
}

TEST_F(TempDir, FashionMnistChecksItsFiles) {
  expect_error([&] { sv::load_fashion_mnist(dir_.string(), sv::Split::Test); },
               {"t10k-images-idx3-ubyte", "dataset-fashion-mnist"});
  fs::copy_file(kData / "idx" / "t10k-images-idx3-ubyte", dir_ / "t10k-images-idx3-ubyte");
  // Labels of the train split (6) beside 4 test images.
  write_bytes(dir_ / "t10k-labels-idx1-ubyte.gz", read_bytes(kData / "idx" / "train-labels-idx1-ubyte.gz"));
  expect_error([&] { sv::load_fashion_mnist(dir_.string(), sv::Split::Test); },
               {"holds 4 images", "6 labels", "t10k-labels-idx1-ubyte.gz"});
  fs::remove(dir_ / "t10k-labels-idx1-ubyte.gz");
  auto labels = read_bytes(kData / "idx" / "t10k-labels-idx1-ubyte");
  labels.back() = 10;
  write_bytes(dir_ / "t10k-labels-idx1-ubyte", labels);
  expect_error([&] { sv::load_fashion_mnist(dir_.string(), sv::Split::Test); },
               {"t10k-labels-idx1-ubyte", "label 10 is out of range"});
}

TEST(FashionMnist, DebianPackageHasTheRealTestSplit) {
  if (!fs::exists(fs::path(sv::kFashionMnistDir) / "t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Debian's dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  }
  const auto test = sv::load_fashion_mnist(sv::kFashionMnistDir, sv::Split::Test);
  EXPECT_EQ(test.images.sizes(), at::IntArrayRef({10000, 1, 28, 28}));
  EXPECT_TRUE(at::bincount(test.labels).equal(at::full({10}, 1000, at::kLong)));  // balanced classes
  EXPECT_EQ(test.labels[0].item<int64_t>(), 9);  // the first test image is an ankle boot
  // The bundled sample is that image, pixel for pixel, as a model of the dataset's geometry sees it.
  const auto sample = sv::read_image((fs::path(SPARSESCOPE_SAMPLES_DIR) / "fashion-mnist" / "00000_ankle_boot.png").string());
  EXPECT_TRUE(sv::vit_pixels(sample, tiny_config(28, 1)).equal(test.images[0]));
}

TEST(ImageFolder, ReadsClassFoldersAtTheModelGeometry) {
  const auto config = tiny_config(12, 3);
  const auto data = sv::load_image_folder((kData / "folder" / "train").string(), config);
  EXPECT_EQ(data.classes, (std::vector<std::string>{"circle", "square"}));
  EXPECT_EQ(data.images.sizes(), at::IntArrayRef({8, 3, 12, 12}));
  EXPECT_TRUE(data.labels.equal(at::tensor({0, 0, 0, 0, 1, 1, 1, 1}, at::kLong)));
  EXPECT_TRUE(data.failures.empty());
  // Files in sorted order, each exactly as the model would see it alone.
  const auto square2 = sv::read_image((kData / "folder" / "train" / "square" / "square_2.png").string());
  EXPECT_TRUE(data.images[6].equal(sv::vit_pixels(square2, config)));

  const auto reordered =
      sv::load_image_folder((kData / "folder" / "train").string(), config, {"triangle", "square", "circle"});
  EXPECT_EQ(reordered.classes.size(), 3u);
  EXPECT_TRUE(reordered.labels.equal(at::tensor({2, 2, 2, 2, 1, 1, 1, 1}, at::kLong)));
  expect_error([&] { sv::load_image_folder((kData / "folder" / "train").string(), config, {"circle", "disk"}); },
               {"folder 'square' is none of the model's 2 classes"});
  expect_error([&] { sv::load_image_folder((kData / "folder" / "train" / "circle").string(), config); },
               {"no class folders"});
}

TEST_F(TempDir, ImageFolderSkipsUnreadableImages) {
  fs::create_directories(dir_ / "a");
  fs::create_directories(dir_ / "b");
  fs::copy_file(kData / "folder" / "val" / "circle" / "circle_0.png", dir_ / "a" / "good.png");
  std::ofstream(dir_ / "b" / "broken.png") << "not a png";
  std::ofstream(dir_ / "b" / "notes.txt") << "ignored: not an image extension";
  const auto data = sv::load_image_folder(dir_.string(), tiny_config(8, 1));
  EXPECT_EQ(data.size(), 1);
  ASSERT_EQ(data.failures.size(), 1u);
  EXPECT_NE(data.failures[0].first.find("broken.png"), std::string::npos);
  EXPECT_EQ(data.classes, (std::vector<std::string>{"a", "b"}));
}

TEST(DatasetSpec, NamesFashionMnistOrAFolderWithSplits) {
  const auto debian = sv::parse_dataset_spec("fashion-mnist");
  EXPECT_TRUE(debian.fashion_mnist);
  EXPECT_EQ(debian.dir, sv::kFashionMnistDir);
  const auto custom = sv::parse_dataset_spec("fashion-mnist:" + (kData / "idx").string());
  EXPECT_TRUE(custom.fashion_mnist);
  EXPECT_EQ(custom.dir, (kData / "idx").string());
  const auto folder = sv::parse_dataset_spec((kData / "folder").string());
  EXPECT_FALSE(folder.fashion_mnist);
  EXPECT_TRUE(sv::has_split(folder, sv::Split::Test));
  EXPECT_FALSE(sv::has_split(sv::parse_dataset_spec((kData / "folder" / "val").string()), sv::Split::Test));
  expect_error([] { sv::parse_dataset_spec("/no/such/folder"); }, {"/no/such/folder"});

  const auto config = tiny_config(12, 1);
  const auto val = sv::load_dataset(folder, sv::Split::Test, config, {}, 3);
  EXPECT_EQ(val.size(), 3);
  EXPECT_EQ(val.images.sizes(), at::IntArrayRef({3, 1, 12, 12}));
  // Fashion-MNIST images brought to another geometry go through the same path as image files.
  const auto fitted = sv::load_dataset(custom, sv::Split::Test, config);
  sv::Image first;
  first.width = first.height = 8;
  const auto gray = expected_images(1)[0];
  first.pixels.resize(8 * 8 * 3);
  for (int i = 0; i < 64; ++i) {
    for (int c = 0; c < 3; ++c) first.pixels[i * 3 + c] = gray.view(-1)[i].item<std::uint8_t>();
  }
  EXPECT_TRUE(fitted.images[0].equal(sv::vit_pixels(first, config)));
}

TEST(VitInput, GrayIsPilConvertL) {
  sv::Image image;
  image.width = 4;
  image.height = 1;
  image.pixels = {255, 0, 0, 0, 255, 0, 0, 0, 255, 12, 200, 77};
  const sv::Image gray = sv::to_gray(image);
  // Pillow's Image.convert('L') of the same pixels.
  const std::vector<std::uint8_t> pil{76, 150, 29, 130};
  for (int i = 0; i < 4; ++i) {
    for (int c = 0; c < 3; ++c) EXPECT_EQ(gray.pixels[i * 3 + c], pil[i]) << i;
  }
}

TEST(VitInput, MatchesEvalTransformAndServesGrayModels) {
  const auto photo = sv::read_image((fs::path(SPARSESCOPE_FIXTURES_DIR) / "images" / "inputs" / "chelsea_200x133.png").string());
  sv::ViTConfig rgb = sv::vit_config("vit_small_patch16_224");
  EXPECT_TRUE(sv::vit_input(photo, rgb).equal(sv::eval_transform(photo, rgb.eval)));

  // A Fashion-MNIST-style gray image at the model's size passes through unchanged, then normalised.
  sv::ViTConfig gray = tiny_config(8, 1);
  gray.eval.mean = {0.25f, 0.25f, 0.25f};
  gray.eval.std = {0.5f, 0.5f, 0.5f};
  const auto pixels = expected_images(1)[0];  // [8, 8]
  sv::Image image;
  image.width = image.height = 8;
  image.source_channels = 1;
  for (int i = 0; i < 64; ++i) image.pixels.insert(image.pixels.end(), 3, pixels.view(-1)[i].item<std::uint8_t>());
  EXPECT_TRUE(sv::vit_pixels(image, gray).equal(pixels.unsqueeze(0)));
  const at::Tensor expected = pixels.unsqueeze(0).to(at::kFloat).div(255).sub_(0.25f).div_(0.5f);
  EXPECT_TRUE(sv::vit_input(image, gray).equal(expected));
  expect_error([&] { sv::vit_pixels(image, tiny_config(8, 2)); }, {"1 or 3"});
}
