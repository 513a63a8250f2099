# Build-wide settings: compiler cache, warnings, sanitizers.
find_program(SPARSESCOPE_CCACHE ccache)
if(SPARSESCOPE_CCACHE)
  # Precompiled headers (SparsescopePch.cmake) are cacheable only with these sloppiness settings.
  set(CMAKE_CXX_COMPILER_LAUNCHER "${CMAKE_COMMAND};-E;env;CCACHE_SLOPPINESS=pch_defines,time_macros;${SPARSESCOPE_CCACHE}")
  set(CMAKE_CUDA_COMPILER_LAUNCHER "${SPARSESCOPE_CCACHE}")
endif()

# Warnings for our own targets only (LibTorch's headers are included as system headers).
add_library(sparsescope_warnings INTERFACE)
target_compile_options(sparsescope_warnings INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)

if(SPARSESCOPE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(SPARSESCOPE_FUZZ)
  # Coverage instrumentation for everything the fuzzers link; the fuzz targets add -fsanitize=fuzzer.
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_link_options(-fsanitize=fuzzer-no-link)
endif()
