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

# The torch wheel's libtorch_cpu.so exports its own copies of std::filesystem and parts of
# std::locale (its remove_all jumps to a null address). Our binaries must take the shared libstdc++
# and list it before LibTorch among their needed libraries, so that the dynamic linker binds those
# symbols to libstdc++'s. A static libstdc++ (a private std::locale, std::cout ...) half-binds to
# LibTorch's copies and crashes; it creeps in when the linker's search meets a libstdc++.a first,
# e.g. on the GPU machine, whose LIBRARY_PATH names a toolchain that has only the archive. So the
# shared object is linked by its absolute path, first, into every target that links
# sparsescope::kernels (the library itself and the installed package's consumers included), and
# tests/kernels checks what the library needs and defines.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  execute_process(COMMAND ${CMAKE_CXX_COMPILER} -print-file-name=libstdc++.so
    OUTPUT_VARIABLE _stdcxx_so OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(NOT IS_ABSOLUTE "${_stdcxx_so}" OR NOT EXISTS "${_stdcxx_so}")
    message(FATAL_ERROR "sparsescope: ${CMAKE_CXX_COMPILER} finds no shared libstdc++ (-print-file-name=libstdc++.so "
      "gives '${_stdcxx_so}'), so it would link libstdc++ statically beside LibTorch, whose own copies of "
      "std::filesystem and std::locale then crash the programs. Use a compiler with the shared libstdc++, "
      "e.g. CXX=/usr/bin/g++.")
  endif()
  file(REAL_PATH "${_stdcxx_so}" SPARSESCOPE_STDCXX_SO)
  set(SPARSESCOPE_STDCXX_FIRST "LINKER:--push-state,--no-as-needed" "${SPARSESCOPE_STDCXX_SO}" "LINKER:--pop-state")
  message(STATUS "sparsescope: links ${SPARSESCOPE_STDCXX_SO} first")
else()
  set(SPARSESCOPE_STDCXX_FIRST "")
endif()

# Installed libraries find LibTorch (and, in CUDA builds, libc10_cuda) where they were linked
# against it; a consumer's own RUNPATH does not reach the libraries' dependencies.
list(APPEND CMAKE_INSTALL_RPATH "${TORCH_INSTALL_PREFIX}/lib" "$ORIGIN")  # $ORIGIN: our libraries find each other
