// A downstream application: links the installed sparsescope and round-trips a tensor file.
#include <ATen/ATen.h>

#include <iostream>

#include "sparsescope/kernels/version.h"
#include "sparsescope/vision/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer OUT.safetensors\n";
    return 2;
  }
  const at::Tensor x = at::arange(12, at::kFloat).reshape({3, 4});
  sparsescope::vision::save_safetensors(argv[1], {{"x", x}}, {{"producer", "consumer"}});
  const auto file = sparsescope::vision::load_safetensors(argv[1]);
  const bool same = file.tensors.size() == 1 && at::equal(file.tensors.at(0).second, x);
  std::cout << "sparsescope " << sparsescope::version() << " (torch " << sparsescope::torch_version()
            << "): round trip " << (same ? "ok" : "MISMATCH") << "\n";
  return same ? 0 : 1;
}
