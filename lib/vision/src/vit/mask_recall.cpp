#include <ATen/ATen.h>

#include <algorithm>
#include <map>

#include "sparsescope/kernels/attend.h"
#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/vit_input.h"

namespace sparsescope::vision {

namespace {

// Keeps what attend() shows each site's probe: the dense model's probabilities, or the model's pattern.
class Capture : public ProbeSet {
 public:
  struct Site : Probe {
    at::Tensor probs;  // [B, H, N, M] float32
    at::Tensor keep;   // [B|1, H|1, N, M] bool
    void observe(const at::Tensor& q, const at::Tensor& k, const at::Tensor&, const Pattern& pattern,
                 double scale) override {
      const at::Tensor keys = expand_kv_heads(k, q.size(1)).to(at::kFloat);
      probs = at::softmax(at::matmul(q.to(at::kFloat), keys.transpose(-2, -1)) * scale, -1);
      keep = materialize(pattern, q.size(2), k.size(2)).to(q.device());
    }
  };
  Probe* site(const std::string& name) override { return &sites_[name]; }
  Site& at(const std::string& name) { return sites_.at(name); }

 private:
  std::map<std::string, Site> sites_;
};

}  // namespace

std::vector<double> mask_recall(VisionTransformer& model, VisionTransformer& dense, const ImageDataset& data,
                                int64_t images, int64_t batch) {
  const ViTConfig& c = model->config();
  SPARSESCOPE_CHECK(attention_method(model) != kDensePolicy, "mask recall: ", c.name,
                    " runs dense attention; recall measures the keys a sparse method keeps");
  SPARSESCOPE_CHECK(dense->config().tokens() == c.tokens() && dense->config().depth == c.depth &&
                        dense->config().num_heads == c.num_heads,
                    "mask recall: the dense model's blocks differ from the model's");
  SPARSESCOPE_CHECK(images > 0 && batch > 0 && data.size() > 0, "mask recall: nothing to measure (images ", images,
                    ", batch ", batch, ", dataset '", data.source, "' of ", data.size(), ")");
  const at::Tensor weight = model->parameters().front();
  const bool model_training = model->is_training(), dense_training = dense->is_training();
  model->eval();
  dense->eval();
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> sums(static_cast<size_t>(c.depth));
  const int64_t total = std::min(images, data.size());
  for (int64_t begin = 0; begin < total; begin += batch) {
    const int64_t n = std::min(batch, total - begin);
    const at::Tensor x = normalize_pixels(data.images.narrow(0, begin, n).to(weight.device()), c.eval);
    Capture kept, probs;
    model->forward(x.to(weight.scalar_type()), &kept);
    dense->forward(x.to(dense->parameters().front().scalar_type()), &probs);
    for (int64_t i = 0; i < c.depth; ++i) {
      const std::string site = "blocks." + std::to_string(i) + ".attn";
      const at::Tensor p = probs.at(site).probs;  // [n, H, N, N]
      const at::Tensor covered = p.mul(kept.at(site).keep).sum(-1).narrow(2, 1, p.size(2) - 1);  // [n, H, N-1]
      const at::Tensor s = covered.to(at::kDouble).sum();
      sums[static_cast<size_t>(i)] = sums[static_cast<size_t>(i)].defined() ? sums[static_cast<size_t>(i)] + s : s;
    }
  }
  model->train(model_training);
  dense->train(dense_training);
  std::vector<double> recall;
  const double queries = static_cast<double>(total * c.num_heads * (c.tokens() - 1));
  for (const auto& s : sums) recall.push_back(s.item<double>() / queries);
  return recall;
}

}  // namespace sparsescope::vision
