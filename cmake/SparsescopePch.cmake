# Precompiled headers (STYLE.md 13). LibTorch's headers are most of every translation unit's
# compile time (a 16-line source took 11-13 s), so each target that includes them parses them
# once. Executables of one kind share a single precompiled header (REUSE_FROM their first one).
# SPARSESCOPE_PCH=OFF compiles without them.
option(SPARSESCOPE_PCH "Precompile the LibTorch and other heavy headers" ON)

set(SPARSESCOPE_PCH_ATEN <ATen/ATen.h>)
set(SPARSESCOPE_PCH_NN ${SPARSESCOPE_PCH_ATEN} <torch/nn/module.h> <torch/nn/modules/linear.h>
  <torch/nn/modules/conv.h> <torch/nn/modules/normalization.h> <torch/nn/modules/container/modulelist.h>
  <nlohmann/json.hpp>)
set(SPARSESCOPE_PCH_QT ${SPARSESCOPE_PCH_ATEN} <QObject> <QString> <QWidget> <QImage> <QPainter>)

# sparsescope_pch(TARGET HEADERS... [REUSE_GROUP name]): precompiles HEADERS for TARGET's C++
# sources; targets of one REUSE_GROUP (same kind, same headers) reuse the first one's.
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
