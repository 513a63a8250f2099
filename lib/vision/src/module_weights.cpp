#include "sparsescope/vision/module_weights.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {
// "a, b, c, d, e, f and 146 more": a wrong --model would otherwise list every key of the file.
constexpr size_t kShown = 6;
std::string join(const std::vector<std::string>& items) {
  std::ostringstream out;
  for (size_t i = 0; i < items.size() && i < kShown; ++i) out << (i ? ", " : "") << items[i];
  if (items.size() > kShown) out << " and " << items.size() - kShown << " more";
  return out.str();
}
}  // namespace

void assign_weights(torch::nn::Module& module, const std::vector<std::pair<std::string, at::Tensor>>& weights,
                    const std::string& source) {
  std::map<std::string, at::Tensor> targets;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) targets.emplace(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) targets.emplace(item.key(), item.value());

  std::map<std::string, const at::Tensor*> given;
  std::set<std::string> present;
  std::vector<std::string> unexpected, misshaped, missing, mistyped, nonfinite;
  for (const auto& [name, tensor] : weights) {
    const auto it = targets.find(name);
    present.insert(name);
    if (it == targets.end()) {
      unexpected.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      std::ostringstream m;
      m << name << " (checkpoint " << tensor.sizes() << ", model " << it->second.sizes() << ")";
      misshaped.push_back(m.str());
    } else if (at::isFloatingType(it->second.scalar_type()) != at::isFloatingType(tensor.scalar_type())) {
      std::ostringstream m;
      m << name << " (checkpoint " << tensor.scalar_type() << ", model " << it->second.scalar_type() << ")";
      mistyped.push_back(m.str());
    } else {
      if (at::isFloatingType(tensor.scalar_type())) {
        const int64_t bad = tensor.numel() - at::isfinite(tensor).sum().item<int64_t>();
        if (bad > 0) nonfinite.push_back(name + " (" + std::to_string(bad) + " of " + std::to_string(tensor.numel()) + ")");
      }
      given.emplace(name, &tensor);
    }
  }
  for (const auto& [name, target] : targets) {
    if (!present.count(name)) missing.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty() || !mistyped.empty()) {
    std::ostringstream msg;
    msg << "weights '" << source << "' do not fit the model:";
    if (!missing.empty()) msg << " " << missing.size() << " missing [" << join(missing) << "];";
    if (!unexpected.empty()) msg << " " << unexpected.size() << " unexpected [" << join(unexpected) << "];";
    if (!misshaped.empty()) msg << " " << misshaped.size() << " mis-shaped [" << join(misshaped) << "];";
    if (!mistyped.empty()) msg << " " << mistyped.size() << " of a non-floating dtype [" << join(mistyped) << "];";
    if (std::max({missing.size(), unexpected.size(), misshaped.size(), mistyped.size()}) > kShown) {
      msg << " `sparsescope tensors " << source << "` lists the file's tensors";
    }
    SPARSESCOPE_FAIL(msg.str());
  }
  SPARSESCOPE_CHECK(nonfinite.empty(), "weights '", source, "': ", nonfinite.size(),
                    " tensors hold NaN or infinite values [", join(nonfinite), "]");
  c10::NoGradGuard no_grad;
  for (const auto& [name, tensor] : given) targets.at(name).copy_(*tensor);
}

}  // namespace sparsescope::vision
