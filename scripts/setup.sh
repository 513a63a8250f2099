#!/usr/bin/env bash
# Installs everything sparsescope needs on Debian 12, idempotently: Debian packages, then a
# project-local Python virtual environment (.venv) holding LibTorch (PyPI's torch wheel).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
TORCH_VERSION=2.11.0   # the GPU machine's version; keep in step with README.md

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-venv python3-pip
  qt6-base-dev libopencv-dev libstb-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  clang libclang-rt-14-dev xvfb xauth
  libimgui-dev libglfw3-dev libgl-dev libgl1-mesa-dri libglx-mesa0
  dataset-fashion-mnist
)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  log=$(mktemp)
  if ! { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq \
           --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -n 30 "$log"; echo "setup: apt-get failed (full log: $log)"; exit 1
  fi
  rm -f "$log"
fi

venv="$root/.venv"
# A venv without pip is one whose creation was interrupted: it is made afresh.
[ -x "$venv/bin/python" ] && [ -x "$venv/bin/pip" ] || python3 -m venv --clear "$venv"
if ! "$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION into .venv (LibTorch comes from this wheel)"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "torch==$TORCH_VERSION"
fi
"$venv/bin/pip" install -q numpy safetensors pillow
echo "setup: done ($("$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "built for CUDA", torch.version.cuda)'))"
