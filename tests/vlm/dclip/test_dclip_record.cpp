// Recording DCLIP's teacher on one picture, its boxes and a caption: the trace's words are the
// caption's tokens, its regions the boxes (clipped, scaled with the picture), and its two sites hold
// each head's softmax(q k^T / sqrt(d)) of the teacher's projections of CLIP's features, computed
// here from the teacher's parameters; bad boxes and captions are refused naming them.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/resample.h"
#include "sparsescope/vision/trace.h"
#include "sparsescope/vlm/clip_data.h"
#include "sparsescope/vlm/dclip_trace.h"
#include "image_text_files.h"
#include "temp_dir.h"

namespace sl = sparsescope::vlm;
namespace sv = sparsescope::vision;

namespace {

class DclipRecording : public sparsescope::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    at::manual_seed(0);
    sparsescope::test::write_picture(dir_ / "r.png", 200, 20, 20);
    image_ = sv::read_image((dir_ / "r.png").string());
    tokenizer_ = std::make_unique<sl::ClipTokenizer>(sparsescope::test::write_small_vocab(dir_).string());
    clip_->eval();
    teacher_->eval();
  }
  sv::Trace record(const std::vector<std::array<int, 4>>& boxes, const std::string& caption, int max_side = 512) {
    return sl::record_dclip_teacher(clip_, teacher_, *tokenizer_, image_, boxes, caption, "r.png", max_side);
  }

  // The head-wise attention of `side` ("text_to_image": queries x, keys y) from the teacher's weights.
  at::Tensor expected(const std::string& side, const at::Tensor& x, const at::Tensor& y) {
    auto params = teacher_->named_parameters();
    const std::string name = "cross_modal_attention." + side + ".";
    const at::Tensor w = params[name + "in_proj_weight"], b = params[name + "in_proj_bias"];
    const int64_t E = x.size(1), H = teacher_->config().heads, d = E / H;
    const at::Tensor q = at::linear(x, w.slice(0, 0, E), b.slice(0, 0, E)).view({-1, H, d}).transpose(0, 1);
    const at::Tensor k = at::linear(y, w.slice(0, E, 2 * E), b.slice(0, E, 2 * E)).view({-1, H, d}).transpose(0, 1);
    return at::softmax(at::matmul(q, k.transpose(1, 2)) / std::sqrt(static_cast<double>(d)), -1);
  }

  sv::Image image_;
  std::unique_ptr<sl::ClipTokenizer> tokenizer_;
  sl::CLIP clip_{sl::clip_config("clip_tiny")};
  sl::DclipTeacher teacher_{sl::DclipTeacherConfig{128, 8, 2.0}};
};

}  // namespace

TEST_F(DclipRecording, HoldsTheTeachersCrossAttention) {
  const std::vector<std::array<int, 4>> boxes = {{0, 0, 20, 15}, {10, 5, 40, 30}, {-5, -5, 50, 50}};
  const sv::Trace trace = record(boxes, "red blue  red");
  const auto& layout = trace.info.layout;
  EXPECT_EQ(layout.kind, sv::kCrossLayout);
  EXPECT_EQ(layout.words, (std::vector<std::string>{"red", "blue", "red"}));
  const std::vector<std::array<float, 4>> shown = {{0, 0, 20, 15}, {10, 5, 40, 30}, {0, 0, 40, 30}};
  EXPECT_EQ(layout.regions, shown);
  EXPECT_EQ(trace.image.sizes(), (at::IntArrayRef{30, 40, 3}));
  EXPECT_EQ(trace.info.model, "dclip_teacher");

  // The reference: CLIP's features as the teacher's training inputs, through the teacher's weights.
  at::NoGradGuard no_grad;
  const at::Tensor crops = sl::region_crops(image_, boxes, 64).to(at::kFloat).div(255);
  const at::Tensor regions = clip_->encode_image(crops);
  const at::Tensor tokens = clip_->text_token_features(tokenizer_->tokenize({"red blue red"}))[0].slice(0, 1, 4);
  ASSERT_EQ(trace.sites.size(), 2u);
  const sv::SiteTrace& t2i = trace.site("cross_modal_attention.text_to_image");
  const sv::SiteTrace& i2t = trace.site("cross_modal_attention.image_to_text");
  EXPECT_EQ(t2i.probs.sizes(), (at::IntArrayRef{8, 3, 3}));
  EXPECT_EQ(i2t.probs.sizes(), (at::IntArrayRef{8, 3, 3}));
  EXPECT_LT((t2i.probs - expected("text_to_image", tokens, regions)).abs().max().item<double>(), 1e-5);
  EXPECT_LT((i2t.probs - expected("image_to_text", regions, tokens)).abs().max().item<double>(), 1e-5);

  const std::string path = (dir_ / "cross.trace.safetensors").string();
  sv::save_trace(trace, path);
  const sv::Trace back = sv::load_trace(path);
  EXPECT_EQ(back.info.layout.words, layout.words);
  EXPECT_TRUE(at::allclose(back.site("cross_modal_attention.image_to_text").probs, i2t.probs, 1e-3, 1e-3));
}

TEST_F(DclipRecording, ScalesThePictureAndItsBoxes) {
  const sv::Trace trace = record({{10, 6, 30, 20}}, "blue", 20);
  EXPECT_EQ(trace.image.sizes(), (at::IntArrayRef{15, 20, 3}));
  EXPECT_EQ(trace.info.layout.regions, (std::vector<std::array<float, 4>>{{5, 3, 15, 10}}));
  EXPECT_EQ(trace.site("cross_modal_attention.image_to_text").probs.sizes(), (at::IntArrayRef{8, 1, 1}));
}

TEST_F(DclipRecording, RefusesBadBoxesAndCaptions) {
  auto message = [&](const std::vector<std::array<int, 4>>& boxes, const std::string& caption) -> std::string {
    try {
      record(boxes, caption);
    } catch (const sparsescope::Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message({{0, 0, 10, 10}, {50, 40, 60, 50}}, "red").find("box 2 (50,40,60,50) is empty or outside the 40x30 image"),
            std::string::npos);
  EXPECT_NE(message({{10, 10, 10, 20}}, "red").find("box 1"), std::string::npos);
  EXPECT_NE(message({}, "red").find("no region boxes"), std::string::npos);
  EXPECT_NE(message({{0, 0, 10, 10}}, "  ").find("has no token"), std::string::npos);
  sl::DclipTeacher other(sl::DclipTeacherConfig{64, 8, 2.0});
  EXPECT_THROW(sl::record_dclip_teacher(clip_, other, *tokenizer_, image_, {{0, 0, 10, 10}}, "red", "r.png"),
               sparsescope::Error);
}
