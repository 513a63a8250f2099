#!/usr/bin/env bash
# Makes room in what a GPU call carries (64 MiB in all): moves the tracked files of 4 MB or more (the
# bundled models, the fp16 ViT fixture) into the ignored .data/aside/, keeping their paths, and with
# --back puts them where they were. The benchmark and training stages do not read them; run
# `scripts/gpu/set_aside.sh --back` before anything else here (and never commit their absence).
# Usage: scripts/gpu/set_aside.sh [--back]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
aside=$root/.data/aside
cd "$root"
if [ "${1:-}" = --back ]; then
  [ -d "$aside" ] || { echo "set_aside: nothing is set aside"; exit 0; }
  (cd "$aside" && find . -type f -print0) | while IFS= read -r -d '' f; do
    mkdir -p "$(dirname "$f")" && mv "$aside/$f" "$f" && echo "back: ${f#./}"
  done
  rm -rf "$aside"
  exit 0
fi
git ls-files -z | while IFS= read -r -d '' f; do
  if [ -f "$f" ] && [ "$(stat -c %s "$f")" -ge 4000000 ]; then
    mkdir -p "$aside/$(dirname "$f")" && mv "$f" "$aside/$f" && echo "aside: $f"
  fi
done
echo "tracked files here now: $(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1) bytes"
