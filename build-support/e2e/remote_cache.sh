#!/usr/bin/env bash
# End-to-end proof of a shared remote cache: a BuildGrid REAPI server on 127.0.0.1, clone A
# runs the tests with remote cache writes and an empty local store, then clone B runs the
# same tests with its own empty local store and must find at least 90% of them "cached
# remotely". Targets default to two torch-free ml_core test files (the libs resolve) and one
# feature-selection test file: two test processes in two resolves, the least work that shows
# it. CI runs this beside publishing, so its clones' cold builds compete with the image builds:
# mnist's tests cost 289 s in clone A there, and all of ml_core's tests, whose requirements PEX
# then holds torch for both clones to upload and download, 124 s + 64 s. Override:
# REMOTE_CACHE_TARGETS.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_root="${PANTS_LAUNCHER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-monorepo-launcher}"
default_targets="libs/ml_core/tests/test_ml_core_atomic.py libs/ml_core/tests/test_ml_core_cli.py
  projects/feature-selection/tests/test_feature_selection_errors.py"
read -r -a targets <<<"$(tr '\n' ' ' <<<"${REMOTE_CACHE_TARGETS:-$default_targets}")"
address="127.0.0.1:50051"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
  [[ -n "${KEEP_WORK:-}" ]] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
log() { echo "e2e/remote-cache: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
# The end of a Pants log without the [stats] counters block, which would hide the error.
log_tail() { grep -vE '^\s+[a-z_]+: [0-9]+$|\[INFO\] Counters:' "$1" | tail -40 >&2; }

# BuildGrid 0.9 needs Python 3.13.
venv="$cache_root/buildgrid-venv"
if [[ ! -x "$venv/bin/bgd" ]]; then
  python313=""
  # A pyenv shim named python3.13 exists even where 3.13 is not active: run it to be sure.
  python3.13 -c "" 2>/dev/null && python313="$(command -v python3.13)"
  if [[ -z "$python313" ]] && command -v pyenv >/dev/null; then
    version="$(pyenv versions --bare | grep -E '^3\.13' | sort -V | tail -n 1)"
    [[ -n "$version" ]] && python313="$(pyenv prefix "$version")/bin/python3.13"
  fi
  [[ -x "$python313" ]] || fail "BuildGrid 0.9 needs Python 3.13 (pyenv install 3.13)."
  "$python313" -m venv "$venv"
  "$venv/bin/pip" install -q buildgrid==0.9.1 >"$work/pip.log" 2>&1 ||
    { cat "$work/pip.log" >&2; fail "could not install buildgrid."; }
fi

cat >"$work/buildgrid.yml" <<YAML
server:
  - !channel
    address: "$address"
    insecure-mode: true
authorization:
  method: none
monitoring:
  enabled: false
storages:
  - !disk-storage &cas-store
    path: $work/cas
caches:
  - !lru-action-cache &action-store
    storage: *cas-store
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: ""
    services:
      - !action-cache
        cache: *action-store
      - !cas
        storage: *cas-store
      - !bytestream
        storage: *cas-store
YAML
"$venv/bin/bgd" server start "$work/buildgrid.yml" >"$work/buildgrid.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', 50051), 0.2)" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/buildgrid.log" >&2; fail "BuildGrid exited."; }
  sleep 0.2
done
log "BuildGrid serving on $address."

run_clone() {
  local name="$1"
  shift
  git clone -q "$repo_root" "$work/$name"
  (cd "$work/$name" && ./pants --no-pantsd --local-store-dir="$work/$name-store" \
    --remote-store-address="grpc://$address" --remote-cache-read "$@" \
    test "${targets[@]}") >"$work/$name.log" 2>&1 || { log_tail "$work/$name.log"; fail "tests failed in $name."; }
}

started=$(date +%s)
run_clone clone-a --remote-cache-write
log "clone A (empty local store, writes the remote cache): $(($(date +%s) - started))s"
started=$(date +%s)
run_clone clone-b --no-remote-cache-write
log "clone B (empty local store, reads the remote cache): $(($(date +%s) - started))s"

python3 - "$work/clone-b.log" <<'PY'
import re, sys
text = re.sub(r"\x1b\[[0-9;]*m", "", open(sys.argv[1], encoding="utf-8", errors="replace").read())
# Test files that share a batch report as one line: "✓ a/test_x.py and 6 other files succeeded".
lines = [l for l in text.splitlines()
         if re.search(r"[✓✕] \S+( and \d+ other files?)? (succeeded|failed)", l)]
remote = [l for l in lines if "cached remotely" in l]
ratio = len(remote) / len(lines) if lines else 0.0
print(f"remote cache: {len(remote)} of {len(lines)} test processes cached remotely ({ratio:.0%})")
if not lines:
    print("no test result lines found in clone B's log: has Pants' summary format changed?")
sys.exit(0 if lines and ratio >= 0.9 else 1)
PY
