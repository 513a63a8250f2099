#pragma once
// sparsescope eval --task retrieval|zero-shot: retrieval and zero-shot accuracy of CLIP weights.
#include <cstdint>
#include <string>

namespace sparsescope::cli {

struct ClipEvalRequest {
  std::string weights;
  std::string model;      ///< a CLIP configuration for weights without a card
  std::string dataset;    ///< image-text pairs (tab-separated: filepath, title): retrieval R@K
  std::string zero_shot;  ///< a class-folder tree: zero-shot top-1 with OpenAI's CIFAR-10 prompts
  std::string vocab;
  int64_t limit = 0;
  int64_t batch = 256;
  std::string device = "cpu";
  bool json = false;
};

/// Prints image->text and text->image R@1/5/10 and mean ranks on the pairs, and zero-shot top-1 on
/// the class folders when given; returns the exit status (1 when inputs were skipped).
int run_clip_eval(const ClipEvalRequest& request);

}  // namespace sparsescope::cli
