#pragma once
// Loading a model as the applications name it (DESIGN.md section 2: one pipeline for the CLI, the
// viewer and library users): a configuration name or the weights' model card, the weights, the
// attention method, the device and the compute dtype.
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "sparsescope/vision/vit.h"

namespace sparsescope::vision {

struct ModelSpec {
  std::string name;     ///< a named configuration; empty: the model card in `weights`
  std::string weights;  ///< safetensors or .pth
  std::string method;   ///< attention method (attention_method.h); empty: the one the weights were trained for
  std::string device = "cpu";  ///< "cpu", "cuda" or "cuda:N"
  std::string dtype = "fp32";  ///< "fp32", "fp16" or "bf16"
};

/// How errors name the fields of a ModelSpec: "--model" for the command line, "model" for the viewer.
struct ModelSpecNames {
  std::string name = "--model", weights = "--weights", method = "--method", device = "--device", dtype = "--dtype";
};

struct LoadedModel {
  VisionTransformer model{nullptr};  ///< eval mode, on `device` in `dtype`
  std::string name;                  ///< the config's name (from the spec or the model card)
  std::string method;                ///< the attention method it runs
  std::vector<std::string> classes;  ///< class names from the model card; empty when it has none
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
};

/// Builds, loads, switches to the method and moves the model. Throws sparsescope::Error whose
/// message starts with the name (`names`) of the field at fault: unknown configuration, unreadable
/// or unfitting weights, an unavailable method, no such device, an unknown dtype.
LoadedModel load_model(const ModelSpec& spec, const ModelSpecNames& names = {});

/// "fp32", "fp16", "bf16" -> the dtype; throws sparsescope::Error naming `flag` otherwise.
at::ScalarType parse_dtype(const std::string& name, const std::string& flag = "--dtype");

/// "cpu", "cuda", "cuda:N" -> the device; throws sparsescope::Error naming `flag` for other names
/// and for a CUDA device on a machine without one.
at::Device parse_device(const std::string& name, const std::string& flag = "--device");

}  // namespace sparsescope::vision
