#!/usr/bin/env bash
# Puts the torch CPU wheel(s) pinned in 3rdparty/python/*.txt into a find-links folder, once.
# torch's CPU build is not on PyPI, so Pants resolves it from this folder (pants.toml
# [python-repos]); the wheel comes from the machine's pip configuration (a mirror or a local
# copy) or else from the PyTorch CPU index. Used by ./pants and by .pants.bootstrap.
#   build-support/torch-wheel.sh WHEELS_DIR [PIP]
# PANTS_LAUNCHER_TORCH_INDEX overrides the index.
set -euo pipefail
build_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
wheels_dir="$1"
pip=("${2:-python3}")
[[ -n "${2:-}" ]] || pip+=(-m pip)
torch_index="${PANTS_LAUNCHER_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

shopt -s nullglob
requirement_files=("$build_root"/3rdparty/python/*.txt)
shopt -u nullglob
((${#requirement_files[@]})) || exit 0
pins="$(sed -n 's/^[[:space:]]*torch[[:space:]]*==[[:space:]]*\([^[:space:];#]*\).*/\1/p' \
  "${requirement_files[@]}" | sort -u)"

arch="$(uname -m)"
[[ "$arch" == "arm64" ]] && arch="aarch64"
mkdir -p "$wheels_dir"
for pin in $pins; do
  if compgen -G "$wheels_dir/torch-${pin//+/%2B}-*.whl" >/dev/null ||
    compgen -G "$wheels_dir/torch-$pin-*.whl" >/dev/null; then
    continue
  fi
  echo "torch-wheel: fetching torch==$pin (CPU build, not on PyPI) into $wheels_dir ..." >&2
  args=(download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version 3.11
    --implementation cp --abi cp311 --platform "manylinux_2_28_$arch"
    --platform "manylinux_2_17_$arch" -d "$wheels_dir")
  "${pip[@]}" "${args[@]}" "torch==$pin" 2>/dev/null ||
    "${pip[@]}" "${args[@]}" --index-url "$torch_index" "torch==$pin" || {
    echo "torch-wheel: could not get torch==$pin from the pip configuration or $torch_index." >&2
    echo "torch-wheel: put torch-$pin-cp311-*.whl into $wheels_dir by hand, or set" \
      "PANTS_LAUNCHER_TORCH_INDEX to an index that has it; projects without torch still build." >&2
    exit 1
  }
done
