#pragma once
// The one way runtime values become template arguments (flash-attention's static_switch.h):
//
//   SPARSESCOPE_BOOL_SWITCH(is_bf16, kIsBf16, [&] {
//     SPARSESCOPE_HEADDIM_SWITCH(head_dim, kHeadDim, [&] { run_dense_fwd<kIsBf16, kHeadDim>(...); });
//   });
//
// Each expands to an if/else chain that calls the lambda with the value as a constexpr in every
// branch, so the set of instantiations is spelled once, here. The caller has already refused
// values outside the chain (can_use), so the head-dim switch has no fallback branch.
#define SPARSESCOPE_BOOL_SWITCH(COND, CONST_NAME, ...) \
  [&] {                                                \
    if (COND) {                                        \
      constexpr static bool CONST_NAME = true;         \
      return __VA_ARGS__();                            \
    } else {                                           \
      constexpr static bool CONST_NAME = false;        \
      return __VA_ARGS__();                            \
    }                                                  \
  }()

/// Head dims with fused kernels: 64 and 128 (can_use refuses others).
#define SPARSESCOPE_HEADDIM_SWITCH(HEAD_DIM, CONST_NAME, ...) \
  [&] {                                                       \
    if ((HEAD_DIM) <= 64) {                                   \
      constexpr static int CONST_NAME = 64;                   \
      return __VA_ARGS__();                                   \
    } else {                                                  \
      constexpr static int CONST_NAME = 128;                  \
      return __VA_ARGS__();                                   \
    }                                                         \
  }()
