// A pretrained MAE as users meet it: loaded from its file (ours with the card, or a state dict with
// --model), one image masked and reconstructed with seeded noise (the removed patches grey in the
// masked picture and predicted in the reconstruction, the visible ones the image's own), and the
// recording: the encoder's sites over the visible tokens, placed back on the grid by query_maps.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_maps.h"
#include "sparsescope/vision/mae_reconstruct.h"
#include "sparsescope/vision/preprocess.h"
#include "sparsescope/vision/safetensors.h"
#include "sparsescope/vision/vit_trace.h"
#include "mae_small.h"
#include "temp_dir.h"

namespace sv = sparsescope::vision;

namespace {

class MaeReconstruct : public sparsescope::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    config_ = sparsescope::test::mae_small("mae_test");
    sv::MaskedAutoencoder model(config_);
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(3);
    model->initialize(gen);
    for (const auto& item : model->named_parameters()) weights_.emplace_back(item.key(), item.value().detach().clone());
    path_ = (dir_ / "mae.safetensors").string();
    sv::save_safetensors(path_, weights_, {{sv::kMaeCardKey, sv::mae_config_json(config_)}});
    // A 40 x 36 picture: resized and cropped to 32 x 32 on the way in.
    image_.width = 40;
    image_.height = 36;
    image_.pixels.resize(40 * 36 * 3);
    for (size_t i = 0; i < image_.pixels.size(); ++i) image_.pixels[i] = static_cast<uint8_t>((i * 37 + i / 120) % 251);
  }
  sv::MaeConfig config_;
  sv::NamedTensors weights_;
  std::string path_;
  sv::Image image_;
};

// The pixels of patch `p` (row-major in the 8 x 8 grid) of an [S, S, 3] picture.
at::Tensor patch(const at::Tensor& picture, int64_t p) {
  return picture.slice(0, (p / 8) * 4, (p / 8) * 4 + 4).slice(1, (p % 8) * 4, (p % 8) * 4 + 4);
}

}  // namespace

TEST_F(MaeReconstruct, LoadsItsWeightsAndRefusesOthers) {
  sv::MaskedAutoencoder model = sv::load_mae(path_);
  EXPECT_EQ(model->config().name, "mae_test");
  for (const auto& [name, tensor] : weights_) EXPECT_TRUE(at::equal(model->named_parameters()[name], tensor)) << name;
  const std::string plain = (dir_ / "plain.safetensors").string();
  sv::save_safetensors(plain, weights_, {});
  try {
    sv::load_mae(plain);
    FAIL() << "no error";
  } catch (const sparsescope::Error& e) {
    EXPECT_NE(std::string(e.what()).find("carries no sparsescope.mae model card"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sv::load_mae(plain, "mae_vit_base_patch16"), sparsescope::Error);  // the keys do not fit
}

TEST_F(MaeReconstruct, MasksPredictsAndRecords) {
  sv::MaskedAutoencoder model = sv::load_mae(path_);
  sv::Trace trace;
  const sv::MaeReconstruction r = sv::reconstruct_mae(model, image_, 0.75, 7, &trace, "picture.png");
  EXPECT_EQ(r.mask.sum().item<float>(), 48.0f);
  sv::EvalTransform t;
  t.img_size = 32;
  t.crop_pct = 1.0;
  const at::Tensor x = sv::eval_transform(image_, t);
  EXPECT_TRUE(at::equal(r.original, sv::denormalize_input(x, t)));
  // The same forward pass by hand: the noise of the seed, the prediction in the removed patches.
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const at::Tensor noise = at::rand({1, 64}, gen);
  const auto out = model->forward(x.unsqueeze(0), noise, 0.75);
  EXPECT_NEAR(r.loss, out.loss.item<double>(), 1e-6);
  const at::Tensor target = model->patchify(x.unsqueeze(0));
  const at::Tensor pixels = out.pred * (target.var(-1, true, true) + 1e-6).sqrt() + target.mean(-1, true);
  const at::Tensor predicted = sv::denormalize_input(model->unpatchify(pixels)[0], t);
  for (int64_t p = 0; p < 64; ++p) {
    if (r.mask[p].item<float>() == 0) {
      EXPECT_TRUE(at::equal(patch(r.masked, p), patch(r.original, p))) << p;
      EXPECT_TRUE(at::equal(patch(r.reconstruction, p), patch(r.original, p))) << p;
    } else {
      EXPECT_LE((patch(r.masked, p).to(at::kInt) - 128).abs().max().item<int>(), 1) << p;  // grey
      EXPECT_LE((patch(r.reconstruction, p).to(at::kInt) - patch(predicted, p).to(at::kInt)).abs().max().item<int>(), 1) << p;
    }
  }

  // The recording: encoder sites over the class token and the 16 visible patches, decoder over all.
  const auto& layout = trace.info.layout;
  ASSERT_EQ(layout.visible.size(), 16u);
  for (const int64_t v : layout.visible) EXPECT_EQ(r.mask[v].item<float>(), 0.0f);
  ASSERT_EQ(trace.sites.size(), 4u);
  EXPECT_EQ(trace.sites[0].name, "blocks.0.attn");
  EXPECT_EQ(trace.sites[0].subset, sv::kVisibleTokens);
  EXPECT_EQ(trace.sites[0].queries, 17);
  EXPECT_EQ(trace.sites[2].name, "decoder_blocks.0.attn");
  EXPECT_TRUE(trace.sites[2].subset.empty());
  EXPECT_EQ(trace.sites[2].queries, 65);
  EXPECT_TRUE(at::equal(trace.image, r.masked));
  const std::string file = (dir_ / "mae.trace.safetensors").string();
  sv::save_trace(trace, file);
  const sv::Trace back = sv::load_trace(file);
  EXPECT_EQ(back.info.layout.visible, layout.visible);
  EXPECT_EQ(back.sites[1].subset, sv::kVisibleTokens);

  // query_maps: a visible patch's row of the encoder, on the grid; a removed patch attends nowhere.
  const int64_t seen = layout.visible[5];
  const at::Tensor maps = sv::query_maps(back.sites[1], back.info.layout, 1 + seen);  // [3, 1, 8, 8]
  const at::Tensor row = back.sites[1].probs.select(1, 1 + 5);                        // [3, 17]
  for (int64_t j = 0; j < 16; ++j) {
    const int64_t p = layout.visible[static_cast<size_t>(j)];
    EXPECT_TRUE(at::allclose(maps.select(2, p / 8).select(2, p % 8).select(1, 0), row.select(1, 1 + j).to(at::kFloat)));
  }
  EXPECT_NEAR(maps.sum().item<double>() + row.select(1, 0).sum().item<double>(), 3.0, 1e-2);  // with the class token
  int64_t removed = 0;
  while (r.mask[removed].item<float>() == 0) ++removed;
  EXPECT_EQ(sv::query_maps(back.sites[1], back.info.layout, 1 + removed).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(sv::site_token(back.sites[1], back.info.layout, 1 + removed), -1);
  EXPECT_EQ(sv::site_token(back.sites[3], back.info.layout, 1 + removed), 1 + removed);
  // The decoder's maps cover every patch.
  EXPECT_NEAR(sv::query_maps(back.sites[3], back.info.layout, 0).sum().item<double>() +
                  back.sites[3].probs.select(1, 0).select(1, 0).sum().item<double>(),
              4.0, 1e-2);

  for (const double bad : {0.0, 1.0, 1.5, 0.999}) EXPECT_THROW(sv::reconstruct_mae(model, image_, bad, 0), sparsescope::Error) << bad;
}
