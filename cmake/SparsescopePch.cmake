# Build speed (STYLE.md 13). LibTorch's headers are most of every translation unit's compile time
# (a 16-line source took 11-13 s on the 2-core machine), so:
# - unity builds: each target compiles its sources in batches of SPARSESCOPE_UNITY_BATCH, so the
#   headers are parsed once per batch rather than once per source;
# - precompiled headers where a target still has several batches (the vision library, the viewer)
#   or where executables of one kind share one (REUSE_GROUP: the gtest executables); a target of a
#   single batch gains nothing from its own. GCC accepts a precompiled header only under the same
#   code model and with every macro of its creation defined alike, so a group holds targets of one
#   kind whose owner (the first) defines no macro the others lack.
# SPARSESCOPE_UNITY=OFF and SPARSESCOPE_PCH=OFF turn either off.
option(SPARSESCOPE_PCH "Precompile the LibTorch and other heavy headers" ON)
option(SPARSESCOPE_UNITY "Compile each target's sources in batches (unity build)" ON)
set(SPARSESCOPE_UNITY_BATCH 8 CACHE STRING "Sources per unity batch")
set(CMAKE_UNITY_BUILD ${SPARSESCOPE_UNITY})
set(CMAKE_UNITY_BUILD_BATCH_SIZE ${SPARSESCOPE_UNITY_BATCH})
if(SPARSESCOPE_UNITY AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # In a batch, a test's fixture from an anonymous namespace is the base of a class declared in an
  # "included" file, which GCC reports as it would for a header.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Wno-subobject-linkage>)
endif()

set(SPARSESCOPE_PCH_ATEN <ATen/ATen.h>)
set(SPARSESCOPE_PCH_NN ${SPARSESCOPE_PCH_ATEN} <torch/nn/module.h> <torch/nn/modules/linear.h>
  <torch/nn/modules/conv.h> <torch/nn/modules/normalization.h> <torch/nn/modules/container/modulelist.h>
  <nlohmann/json.hpp>)
set(SPARSESCOPE_PCH_QT ${SPARSESCOPE_PCH_ATEN} <QObject> <QString> <QWidget> <QImage> <QPainter>)

# sparsescope_pch(TARGET HEADERS... [REUSE_GROUP name]): precompiles HEADERS for TARGET's C++
# sources; targets of one REUSE_GROUP reuse the first one's precompiled header.
function(sparsescope_pch target)
  cmake_parse_arguments(PCH "" "REUSE_GROUP" "HEADERS" ${ARGN})
  if(NOT SPARSESCOPE_PCH)
    return()
  endif()
  if(PCH_REUSE_GROUP)
    get_property(owner GLOBAL PROPERTY SPARSESCOPE_PCH_OWNER_${PCH_REUSE_GROUP})
    if(owner)
      target_precompile_headers(${target} REUSE_FROM ${owner})
      return()
    endif()
    set_property(GLOBAL PROPERTY SPARSESCOPE_PCH_OWNER_${PCH_REUSE_GROUP} ${target})
  endif()
  list(TRANSFORM PCH_HEADERS REPLACE "^(.+)$" "$<$<COMPILE_LANGUAGE:CXX>:\\1>")
  target_precompile_headers(${target} PRIVATE ${PCH_HEADERS})
endfunction()
