#include "module_weights.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <map>
#include <set>
#include <sstream>

#include "sparsescope/kernels/error.h"

namespace sparsescope::vision {

namespace {
std::string join(const std::vector<std::string>& items) {
  std::ostringstream out;
  for (size_t i = 0; i < items.size(); ++i) out << (i ? ", " : "") << items[i];
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
  std::vector<std::string> unexpected, misshaped, missing;
  for (const auto& [name, tensor] : weights) {
    const auto it = targets.find(name);
    present.insert(name);
    if (it == targets.end()) {
      unexpected.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      std::ostringstream m;
      m << name << " (checkpoint " << tensor.sizes() << ", model " << it->second.sizes() << ")";
      misshaped.push_back(m.str());
    } else {
      given.emplace(name, &tensor);
    }
  }
  for (const auto& [name, target] : targets) {
    if (!present.count(name)) missing.push_back(name);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::ostringstream msg;
    msg << "weights '" << source << "' do not fit the model:";
    if (!missing.empty()) msg << " " << missing.size() << " missing [" << join(missing) << "];";
    if (!unexpected.empty()) msg << " " << unexpected.size() << " unexpected [" << join(unexpected) << "];";
    if (!misshaped.empty()) msg << " " << misshaped.size() << " mis-shaped [" << join(misshaped) << "];";
    SPARSESCOPE_FAIL(msg.str());
  }
  c10::NoGradGuard no_grad;
  for (const auto& [name, tensor] : given) targets.at(name).copy_(*tensor);
}

}  // namespace sparsescope::vision
