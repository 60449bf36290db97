#!/usr/bin/env bash
# End-to-end proof that pants.toml needs nothing from ./pants: in a fresh clone, the installed
# Pants 2.17.1 entry point, run with a clean environment (none of the variables ./pants
# exports), lists, checks BUILD files, lints, and tests one file of the torch-free project
# (all of its 709 tests cost 180 s here and prove nothing more about the entry point); and
# .pants.bootstrap (which the official scie-pants launcher sources) says where torch comes
# from when it cannot fetch it.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
cleanup() {
  # The clone's pantsd (its process title names the build root) would outlive the directory.
  pkill -f "pantsd \[$work/clone\]" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "e2e/official-launcher: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

version="$(awk -F'"' '/^pants_version/ {print $2}' "$repo_root/pants.toml")"
cache_root="${PANTS_LAUNCHER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-monorepo-launcher}"
pants_bin="$cache_root/pants-$version/bin/pants"
[[ -x "$pants_bin" ]] || (cd "$repo_root" && ./pants --version >/dev/null)
[[ -x "$pants_bin" ]] || fail "no Pants $version entry point at $pants_bin."

git clone -q "$repo_root" "$work/clone"
cd "$work/clone"
# Only what a developer's shell has: no PANTS_*, no launcher variables. XDG_CACHE_HOME, where
# the shell sets one, stays: it is the user's own choice of cache folder, not ./pants'. Pants
# then shares the process cache with ./pants, and a result it reuses is one whose process
# (argv, environment, inputs) came out identical without ./pants' environment. Dropping it
# made this proof lint and build everything again in a second cache (248 s of the fd7e6cf run).
clean_pants() {
  env -i HOME="$HOME" PATH="$PATH" LANG=C.UTF-8 TERM=dumb \
    ${XDG_CACHE_HOME:+XDG_CACHE_HOME="$XDG_CACHE_HOME"} "$pants_bin" "$@"
}
run() {
  local name="$1"
  shift
  local started=$SECONDS
  clean_pants "$@" >"$work/$name.log" 2>&1 || { tail -40 "$work/$name.log" >&2; fail "pants $* failed."; }
  log "pants $*: ok ($((SECONDS - started)) s)"
}

# One invocation for the goals that take `::`, and pantsd (started by it, with its clean
# environment) for the test after it: each run without pantsd parses every BUILD file and
# infers every dependency again (about 30 s here), which proves nothing more.
run checks list tailor --check update-build-files --check lint ::
grep -qx "projects/mnist:train" "$work/checks.log" || fail "list :: did not list projects/mnist:train."
run test test projects/feature-selection/tests/test_feature_selection_errors.py

# What scie-pants sources before every run, on a machine whose torch wheel is not at hand and
# whose PyTorch index is unreachable: it says where torch comes from and what to do, and
# returns success so that goals needing no torch still run.
mkdir -p "$work/home"
env -i HOME="$work/home" PATH="$PATH" LANG=C.UTF-8 PIP_CONFIG_FILE=/dev/null \
  PANTS_LAUNCHER_TORCH_INDEX=http://127.0.0.1:9/simple bash -c 'source .pants.bootstrap' \
  >"$work/bootstrap.log" 2>&1 || { cat "$work/bootstrap.log" >&2; fail ".pants.bootstrap failed."; }
for expected in "could not get torch==" "127.0.0.1:9" "$work/home/.cache/ml-monorepo-launcher/wheels"; do
  grep -qF "$expected" "$work/bootstrap.log" ||
    { cat "$work/bootstrap.log" >&2; fail ".pants.bootstrap did not say '$expected'."; }
done
log ".pants.bootstrap with no torch wheel and no index: $(grep -m1 "could not get torch" "$work/bootstrap.log")"
log "OK"
