#pragma once
// Mixed precision of training and evaluation.
#include <string>

namespace sparsescope::vision {

/// FP32 computes in the parameters' dtype; BF16 and FP16 run the forward pass under autocast
/// (torch.autocast's op lists) with float32 parameters.
enum class Precision { FP32, BF16, FP16 };

/// "fp32", "bf16", "fp16"; parse throws sparsescope::Error on anything else.
const char* to_string(Precision precision);
Precision parse_precision(const std::string& name);

}  // namespace sparsescope::vision
