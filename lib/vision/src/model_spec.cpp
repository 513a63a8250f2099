#include "sparsescope/vision/model_spec.h"

#include <ATen/Context.h>
#include <c10/core/Device.h>

#include <optional>

#include "sparsescope/kernels/error.h"
#include "sparsescope/vision/attention_method.h"
#include "sparsescope/vision/model_card.h"

namespace sparsescope::vision {

at::ScalarType parse_dtype(const std::string& name, const std::string& flag) {
  if (name == "fp32") return at::kFloat;
  if (name == "fp16") return at::kHalf;
  if (name == "bf16") return at::kBFloat16;
  SPARSESCOPE_FAIL(flag, ": unknown dtype '", name, "' (fp32, fp16, bf16)");
}

at::Device parse_device(const std::string& name, const std::string& flag) {
  std::optional<at::Device> device;
  try {
    device = at::Device(name);
  } catch (const c10::Error&) {
    SPARSESCOPE_FAIL(flag, ": unknown device '", name, "' (cpu, cuda, cuda:N)");
  }
  SPARSESCOPE_CHECK(device->is_cpu() || device->is_cuda(), flag, ": '", name, "' is neither cpu nor cuda");
  SPARSESCOPE_CHECK(device->is_cpu() || at::hasCUDA(), flag, " ", name, ": no CUDA device is available on this machine");
  return *device;
}

LoadedModel load_model(const ModelSpec& spec, const ModelSpecNames& names) {
  LoadedModel loaded;
  loaded.dtype = parse_dtype(spec.dtype, names.dtype);
  loaded.device = parse_device(spec.device, names.device);
  if (!spec.name.empty()) {
    try {
      vit_config(spec.name);
    } catch (const Error& e) {
      SPARSESCOPE_FAIL(names.name, ": ", e.what());
    }
  }
  try {
    LoadedViT vit = load_vit(spec.weights, spec.name);
    loaded.model = std::move(vit.model);
    loaded.classes = std::move(vit.classes);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL(names.weights, ": ", e.what());
  }
  loaded.name = loaded.model->config().name;
  loaded.method = spec.method.empty() ? default_attention_method(loaded.model->config()) : spec.method;
  try {
    use_attention_method(loaded.model, loaded.method);
  } catch (const Error& e) {
    SPARSESCOPE_FAIL(names.method, ": ", e.what());
  }
  loaded.model->eval();
  loaded.model->to(loaded.device, loaded.dtype);
  return loaded;
}

}  // namespace sparsescope::vision
