# LibTorch comes from PyPI's torch wheel in the project's virtual environment (.venv, made by
# scripts/setup.sh); torch.utils.cmake_prefix_path points at its CMake package.
if(NOT Torch_DIR)
  if(NOT SPARSESCOPE_PYTHON)
    if(EXISTS "${PROJECT_SOURCE_DIR}/.venv/bin/python")
      set(SPARSESCOPE_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python")
    else()
      find_program(SPARSESCOPE_PYTHON NAMES python3 python REQUIRED)
    endif()
  endif()
  execute_process(
    COMMAND "${SPARSESCOPE_PYTHON}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
    OUTPUT_VARIABLE _torch_prefix OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _torch_rc ERROR_QUIET)
  if(NOT _torch_rc EQUAL 0)
    message(FATAL_ERROR "sparsescope: cannot import torch with ${SPARSESCOPE_PYTHON}; run scripts/setup.sh or pass -DTorch_DIR=...")
  endif()
  list(APPEND CMAKE_PREFIX_PATH "${_torch_prefix}")
endif()
set(SPARSESCOPE_PYTHON "${SPARSESCOPE_PYTHON}" CACHE FILEPATH "Python with torch (LibTorch and test interop)")

# LibTorch owns the CUDA -gencode flags (TORCH_CUDA_ARCH_LIST) and warns when it sees
# CMAKE_CUDA_ARCHITECTURES defined; it is set back to OFF (no CMake-chosen architectures) after.
unset(CMAKE_CUDA_ARCHITECTURES)
find_package(Torch REQUIRED)
if(SPARSESCOPE_WITH_CUDA)
  set(CMAKE_CUDA_ARCHITECTURES OFF)
endif()
message(STATUS "sparsescope: LibTorch ${Torch_VERSION} from ${Torch_DIR}")

# The torch wheel's libtorch.so exports its own copy of std::filesystem, and its remove_all jumps
# to a null address. Listing libstdc++ before LibTorch among the needed libraries makes the
# dynamic linker bind std::filesystem to libstdc++'s. Applied to every target that links
# sparsescope::kernels (consumers of the installed package included).
set(SPARSESCOPE_STDCXX_FIRST "LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
# That only works with the shared libstdc++: a compiler that finds only libstdc++.a (a relocated
# toolchain, e.g. the GPU machine's CXX=/opt/gcc/bin/g++) links a private copy into every binary,
# whose std::filesystem and std::locale references then bind to LibTorch's copies and crash.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.so
    OUTPUT_VARIABLE _stdcxx_so OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT IS_ABSOLUTE "${_stdcxx_so}")
    message(FATAL_ERROR "sparsescope: ${CMAKE_CXX_COMPILER} finds no shared libstdc++ (-print-file-name=libstdc++.so "
      "gives '${_stdcxx_so}'), so it would link libstdc++ statically beside LibTorch, whose own copies of "
      "std::filesystem and std::locale then crash the programs. Use a compiler with the shared libstdc++, "
      "e.g. CXX=/usr/bin/g++.")
  endif()
endif()

# Installed libraries find LibTorch (and, in CUDA builds, libc10_cuda) where they were linked
# against it; a consumer's own RUNPATH does not reach the libraries' dependencies.
list(APPEND CMAKE_INSTALL_RPATH "${TORCH_INSTALL_PREFIX}/lib" "$ORIGIN")  # $ORIGIN: our libraries find each other
