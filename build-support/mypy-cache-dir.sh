#!/usr/bin/env bash
# Creates the folder Pants 2.17 keeps its mypy cache in, which Pants itself never creates
# (pantsbuild/pants#19888, fixed in 2.18): without it every `./pants check` starts mypy from an
# empty cache and re-analyses torch and transformers (one to two minutes per resolve on 2 cores).
# ./pants and .pants.bootstrap run it before Pants.
#
# Usage: mypy-cache-dir.sh BUILD_ROOT [SEED_ROOT]
# With SEED_ROOT (another checkout), a clone that has no cache yet starts from a copy of that
# checkout's (the end-to-end proofs do this). mypy checks every cached module against its source's
# hash, so a copied entry is used only where the source is the same.
set -euo pipefail
[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 BUILD_ROOT [SEED_ROOT]" >&2; exit 2; }

# The folder Pants computes: <named caches>/mypy_cache/<sha256 of the build root>/<python>; the
# code's interpreter constraints (pants.toml) are CPython==3.11.*, so mypy runs as 3.11.
# Pants hashes the build root's physical path, so symlinks in the argument are resolved first.
cache_dir() {
  local named_caches="${PANTS_NAMED_CACHES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pants/named_caches}"
  local root
  root="$(cd "$1" && pwd -P)"
  echo "$named_caches/mypy_cache/$(printf '%s' "$root" | sha256sum | cut -d' ' -f1)/3.11"
}

target="$(cache_dir "$1")"
mkdir -p "$target"
if [[ $# -eq 2 && ! -f "$target/cache.db" ]]; then
  seed="$(cache_dir "$2")/cache.db"
  if [[ -f "$seed" ]]; then
    # Copy then rename, so a Pants run starting meanwhile never reads half a database.
    cp "$seed" "$target/cache.db.seeding" && mv "$target/cache.db.seeding" "$target/cache.db"
  fi
fi
