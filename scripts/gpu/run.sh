#!/usr/bin/env bash
# Everything the GPU machine does, in one call (see /work/.library/device, `run`):
#
#   scripts/gpu/run.sh [STAGE...]      default: build test sanitize bench vit sass
#
#   kernels    build only libsparsescope_kernels and test_kernels, run the CUDA tests of test_kernels
#              (attention, the Hopper forward asked for, the dynamic convolution, basis_topk)
#   build      configure and build the libraries, tests and bench programs (no apps, no trainer)
#              against this python's torch
#   test       the full ctest (the CUDA tests run here; ViT CUDA parity included)
#   sanitize   compute-sanitizer memcheck over the Small CUDA test cases
#   bench      bench/attention.py, the full table (bench-quick: N <= 16k, fewer densities)
#   bench-dlgsanet  bench/dlgsanet.py: DLGSANet's dynamic convolution, fused against the official CuPy
#              kernel (.data/official/dlgsanet, made by scripts/gpu/prepare_official.sh), unfold and
#              shifts; with the official code also bench/dlgsanet_model.sh, the whole model against it
#              (its trainer rows need sparsescope-train among SPARSESCOPE_GPU_TARGETS), and
#              bench/dlgsanet_share.py, SparseGSA's attention core's share of the model's time
#   bench-mae  bench/mae.sh: MAE and MAE-LUT pretraining images/s against the official code (its
#              copy made by scripts/gpu/prepare_official.sh, carried in .data/official; MAE_BATCH) into OUT/mae
#   vit        bench/vit.sh BUILD PYTHON OUT/vit, when that script exists
#   sass       per-kernel instruction counts from cuobjdump, and ptxas's resource report
#   train-sr   a chunk of DLGSANet training (scripts/gpu/train_sr.sh; SR_TRAIN, SR_EVAL, SR_MODEL,
#              SR_BUDGET, SR_EPOCHS, SR_CUDA_GRAPH; data by default in .data/sr/{train,Set5}, made by
#              scripts/gpu/prepare_sr_data.sh) into OUT/sr
#   train-mae  MAE or MAE-LUT pretraining and fine-tuning in one call (scripts/gpu/train_mae.sh;
#              MAE_TASK, MAE_PRE_BUDGET (or MAE_PRE_EPOCHS), MAE_FT_BUDGET, MAE_LP_BUDGET, MAE_SEEDS
#              (e.g. "0 1 2", run at once), MAE_PRETRAINED (fine-tune only), MAE_CUDA_GRAPH;
#              MAE_DATA, by default .data/cifar10.tar.gz made by scripts/gpu/prepare_mae_data.sh,
#              unpacked) into OUT/mae-run
#   train-clip a chunk of CLIP pretraining (scripts/gpu/train_clip.sh; CLIP_DATA, CLIP_MODEL,
#              CLIP_BUDGET, CLIP_EPOCHS; data by default in .data/clip, made by
#              scripts/gpu/prepare_clip_data.py) into OUT/clip
#
# The library's Debian dependencies come from .deps/ (scripts/gpu/fetch_deps.sh, run beforehand on
# the development machine; pass `.deps` in `carry`), unpacked into a private prefix; with CLI11's
# headers in .deps/cli11/CLI the trainer (sparsescope-train) is built too. Results go to
# $OUT (run.log, attention.md, sass.txt, vit/); the exit status is non-zero if a stage failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$root/out/gpu}
py=${SPARSESCOPE_GPU_PYTHON:-$(command -v python3)}
build=${SPARSESCOPE_GPU_BUILD:-$root/build-gpu}  # ignored: kept between calls on a warm machine
deps=/tmp/sparsescope-deps
mkdir -p "$out" "$build"
exec > >(tee -a "$out/run.log") 2>&1

stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build test sanitize bench vit sass)
failed=()
stage() { echo; echo "== $1 ($(date +%T))"; }
fail() { echo "!! stage $1 failed"; failed+=("$1"); }

stage "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))'
command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
nvcc --version | tail -2

# The machine's CXX (/opt/gcc/bin/g++) finds only a static libstdc++.a, which LibTorch programs must
# not link (SparsescopeTorch.cmake refuses it); its own Ubuntu g++ links the shared one.
[ -x /usr/bin/g++ ] && export CXX=/usr/bin/g++ CC=/usr/bin/gcc
echo "compiler: $(${CXX:-g++} --version | head -1) ($(${CXX:-g++} -print-file-name=libstdc++.so)); LIBRARY_PATH=${LIBRARY_PATH:-}"

# What a call carries is at most 64 MiB: scripts/gpu/set_aside.sh moves the large tracked files (the
# bundled models) out of the way for the benchmark and training stages, `--back` restores them.
# Python packages the machine lacks travel in the ignored .whl/ (carry it; scripts/gpu/fetch_wheels.sh
# fills it): wheels, and wheels too big to travel as published unpacked, stripped and packed as .tar.xz.
if compgen -G "$root/.whl/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$root"/.whl/*.whl
fi
for f in "$root"/.whl/*.tar.xz; do [ -f "$f" ] && mkdir -p /tmp/site && tar -xJf "$f" -C /tmp/site; done
[ -d /tmp/site ] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}

mkdir -p "$deps"
for f in "$root"/.deps/*.deb; do dpkg -x "$f" "$deps"; done
export PKG_CONFIG_SYSROOT_DIR=$deps
export PKG_CONFIG_LIBDIR=$deps/usr/lib/x86_64-linux-gnu/pkgconfig:$deps/usr/share/pkgconfig
export LD_LIBRARY_PATH=$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
pkg_config=$(command -v pkg-config || echo "$deps/usr/bin/pkgconf")

trainer=(-DSPARSESCOPE_BUILD_TRAINER=OFF)
[ -f "$root/.deps/cli11/CLI/CLI.hpp" ] &&
  trainer=(-DSPARSESCOPE_BUILD_TRAINER=ON -DSPARSESCOPE_CLI11_INCLUDE_DIR="$root/.deps/cli11")

configure() {
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARSESCOPE_BUILD_APPS=OFF \
    -DCMAKE_CXX_COMPILER="${CXX:-g++}" -DCMAKE_C_COMPILER="${CC:-gcc}" \
    "${trainer[@]}" -DSPARSESCOPE_BUILD_BENCH=ON \
    -DSPARSESCOPE_CUDA=ON -DSPARSESCOPE_PYTHON="$py" -DSPARSESCOPE_PTXAS_VERBOSE=ON \
    -DCMAKE_PREFIX_PATH="$deps/usr" -DGTest_DIR="$deps/usr/lib/x86_64-linux-gnu/cmake/GTest" \
    -DPKG_CONFIG_EXECUTABLE="$pkg_config" >"$build/configure.out" 2>&1 || { cat "$build/configure.out"; return 1; }
}

# ptxas's report for each kernel, one line each, from a build log.
ptxas_report() {
  grep -E "Compiling entry function|registers|spill" "$1" | sed -E 's/ptxas info *: //' | paste - - - |
    sed -E "s/Compiling entry function '_ZN11sparsescope4cuda//; s/' for / /" | sort -u
}

has() { local s; for s in "${stages[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

if has kernels; then
  stage kernels
  if configure && cmake --build "$build" -j 16 --target test_kernels >"$build/kernels.out" 2>&1; then
    ptxas_report "$build/kernels.out"
    "$build/tests/kernels/test_kernels" --gtest_filter='Small/*:Odd/*:SmallWgmma/*:OddWgmma/*:CudaAttendLayout.*:Patterns/CudaGradient.*:CudaAttendGqa.*:CudaAttendBias.*:CudaAttendDeterministic.*:Backends.*:DynamicConvCuda.*:BasisTopkCuda.*' \
      --gtest_brief=1 || fail kernels
  else
    tail -50 "$build/kernels.out"; fail kernels
  fi
fi

if has build; then
  stage build
  start=$(date +%s)
  # -k 0: a target that does not build leaves the others (and their tests) standing.
  targets=()  # SPARSESCOPE_GPU_TARGETS: only these (e.g. for the benchmarks alone)
  for t in ${SPARSESCOPE_GPU_TARGETS:-}; do targets+=(--target "$t"); done
  if configure && cmake --build "$build" -j 16 "${targets[@]}" -- -k 0 >"$build/build.out" 2>&1; then
    echo "built in $(( $(date +%s) - start )) s"
  else
    grep -E "FAILED|error" "$build/build.out" | head -40; fail build
  fi
fi

if has test; then
  stage test
  # 16 tests at once, each with torch's default of one thread per core, oversubscribe the machine
  # 16-fold; two threads a test keep the CPU tests at their CI speed. ctest starts the costliest
  # tests first; a fresh build folder has no costs yet, so they come from test_costs.txt.
  costs="$build/Testing/Temporary/CTestCostData.txt"
  if [ ! -s "$costs" ]; then
    mkdir -p "${costs%/*}"
    { grep -v '^#' "$root/scripts/gpu/test_costs.txt" | awk '{print $2, 1, $1}'; echo ---; } >"$costs"
  fi
  (cd "$build" && OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ctest --output-on-failure -j 16 --timeout 900) || fail test
  echo "-- ViT CUDA parity (tests/vision):"
  "$build/tests/vision/test_models" --gtest_filter='*Cuda*' || fail vit-parity
fi

if has sanitize; then
  stage sanitize
  compute-sanitizer --tool memcheck --error-exitcode 1 --print-limit 20 \
    "$build/tests/kernels/test_kernels" --gtest_filter='Small/*:SmallWgmma/*' --gtest_brief=1 || fail sanitize
fi

lib="$build/lib/kernels/libsparsescope_kernels.so"
if has bench; then
  stage bench
  PYTHONUNBUFFERED=1 "$py" -X faulthandler "$root/bench/attention.py" --lib "$lib" --out "$out/attention.md" \
    --reps 7 --warmup 2 || fail bench
fi
if has bench-dlgsanet; then
  stage bench-dlgsanet
  official=()  # the official CuPy kernel beside ours, when prepare_official.sh's copy came along
  [ -d "$root/.data/official/dlgsanet" ] && official=(--official "$root/.data/official/dlgsanet")
  PYTHONUNBUFFERED=1 "$py" "$root/bench/dlgsanet.py" --lib "$lib" "${official[@]}" --out "$out/dlgsanet.md" || fail bench-dlgsanet
  if [ ${#official[@]} -gt 0 ]; then  # the whole model against the official one (which imports einops: .whl)
    bash "$root/bench/dlgsanet_model.sh" "$build" "$py" "$out" "$root/.data/official/dlgsanet" || fail bench-dlgsanet-model
    PYTHONUNBUFFERED=1 "$py" "$root/bench/dlgsanet_share.py" --lib "$lib" --dlgsanet "$root/.data/official/dlgsanet" \
      --out "$out/dlgsanet_share.md" || fail bench-dlgsanet-share
  fi
fi
if has bench-mae; then
  stage bench-mae
  bash "$root/bench/mae.sh" "$build" "$py" "$out/mae" "$root/.data/official" "${MAE_BATCH:-256}" || fail bench-mae
fi
if has bench-quick; then
  stage bench-quick
  PYTHONUNBUFFERED=1 "$py" -X faulthandler "$root/bench/attention.py" --lib "$lib" --out "$out/attention.md" \
    --seq 4096,16384 --densities 100,20,5 --topk 64 --topk-seq 16384 --reps 5 || fail bench-quick
fi

if has vit; then
  stage vit
  if [ -f "$root/bench/vit.sh" ]; then
    mkdir -p "$out/vit"
    bash "$root/bench/vit.sh" "$build" "$py" "$out/vit" || fail vit
  else
    echo "bench/vit.sh does not exist; skipped"
  fi
fi

if has sass; then
  stage sass
  {
    echo "# ptxas (sm_90)"
    for log in "$build/build.out" "$build/kernels.out"; do
      if grep -q "Compiling entry function" "$log" 2>/dev/null; then ptxas_report "$log"; break; fi
    done
    echo
    echo "# SASS instruction counts per kernel (cuobjdump -sass)"
    cuobjdump -sass "$lib" | awk '
      /Function :/ { if (name) report(); name = $3; delete n; next }
      /\/\*[0-9a-f]+\*\// { op = $2; sub(/\..*/, "", op); sub(/;$/, "", op); if (op ~ /^@/) op = $3; sub(/\..*/, "", op); n[op]++ }
      function report() { printf "%s:", name; for (o in n) if (o ~ /^(HMMA|HGMMA|LDSM|LDGSTS|LDG|STG|LDS|STS|LDL|STL|MUFU|BAR|SHFL|FFMA|FMUL|ATOMS)$/) printf " %s=%d", o, n[o]; printf "\n" }
      END { if (name) report() }'
  } >"$out/sass.txt" 2>&1 || fail sass
  cat "$out/sass.txt"
fi

# The training stages build only the trainer (a fresh build folder is configured first) and start
# OUT/<stage>/train.log with the build's output and the GPU's name: the machine sends back at most
# 8 files, so the scripts append their own messages there.
build_trainer() {
  mkdir -p "$1"
  if { [ -f "$build/build.ninja" ] || configure; } &&
    cmake --build "$build" --target sparsescope-train -j 16 >"$1/train.log" 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >>"$1/train.log" 2>&1 || true
  else
    grep -E "error|FAILED" "$1/train.log" | head -20
    return 1
  fi
}

if has train-sr; then
  stage train-sr
  build_trainer "$out/sr" &&
  bash "$root/scripts/gpu/train_sr.sh" "$build" "$out/sr" "${SR_TRAIN:-$root/.data/sr/train}" \
    "${SR_EVAL:-$root/.data/sr/Set5}" "${SR_MODEL:-dlgsanet_light_x4}" "${SR_BUDGET:-420}" "${SR_EPOCHS:-60}" || fail train-sr
fi

if has train-mae; then
  stage train-mae
  mae_data=${MAE_DATA:-/tmp/cifar10}
  [ -z "${MAE_DATA:-}" ] && rm -rf "$mae_data" && tar -xzf "$root/.data/cifar10.tar.gz" -C /tmp
  build_trainer "$out/mae-run" &&
  bash "$root/scripts/gpu/train_mae.sh" "$build" "$out/mae-run" "$mae_data" "${MAE_TASK:-mae}" \
    "${MAE_PRE_BUDGET:-240}" "${MAE_FT_BUDGET:-200}" "${MAE_SEEDS:-0}" "${MAE_LP_BUDGET:-60}" || fail train-mae
fi

if has train-clip; then
  stage train-clip
  build_trainer "$out/clip" &&
  bash "$root/scripts/gpu/train_clip.sh" "$build" "$out/clip" "${CLIP_DATA:-$root/.data/clip}" \
    "${CLIP_MODEL:-clip_tiny}" "${CLIP_BUDGET:-420}" "${CLIP_EPOCHS:-40}" || fail train-clip
fi

echo
if [ ${#failed[@]} -eq 0 ]; then echo "== all stages passed: ${stages[*]}"; exit 0; fi
echo "== failed stages: ${failed[*]}"
exit 1
