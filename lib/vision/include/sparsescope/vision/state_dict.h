#pragma once
// Checkpoints as ordered name -> tensor lists, from safetensors or torch.save (.pth) files.
#include <ATen/core/Tensor.h>

#include <string>

#include "sparsescope/vision/safetensors.h"

namespace sparsescope::vision {

/// Reads a `.pth` written by torch.save (the zip format, PyTorch >= 1.6): LibTorch's zip reader
/// plus an allowlist unpickler that builds only containers, scalars and tensors (LibTorch's own
/// unpickler cannot read OrderedDict state dicts; see src/io/pickle_state_dict.cpp). Tensors are
/// CPU tensors of the stored dtype; views keep sharing their storage. Checkpoint nesting is
/// unwrapped while the dict is not all tensors: the first of "model", "state_dict", "params_ema",
/// "params" that holds a dict is entered (so BasicSR's EMA weights win over its raw ones); other
/// entries beside it (epoch, optimizer, argparse args) are ignored. Names are returned as stored:
/// prefixes such as DataParallel's "module." are NOT stripped. Throws sparsescope::Error naming the
/// file (and the key) for a legacy non-zip torch.save, a corrupt or truncated archive or pickle,
/// non-string keys and non-tensor entries in the state dict.
NamedTensors load_pth_state_dict(const std::string& path);

/// Whether `path` holds a torch.save file (the zip signature "PK\x03\x04", or a legacy pickle)
/// rather than safetensors, whatever its extension. Throws sparsescope::Error for what is not a
/// readable regular file.
bool is_torch_save(const std::string& path);

/// Reads a state dict from a torch.save file (is_torch_save) or else a safetensors file (its
/// `__metadata__` is dropped).
NamedTensors load_state_dict(const std::string& path);

/// Converts every floating-point tensor to `dtype` (e.g. fp16/bf16 checkpoints into an fp32
/// model); integer and bool tensors such as BatchNorm's num_batches_tracked stay as they are.
NamedTensors cast_floating(NamedTensors tensors, at::ScalarType dtype);

}  // namespace sparsescope::vision
