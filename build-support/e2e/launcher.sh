#!/usr/bin/env bash
# End-to-end check of the ./pants launcher from an empty cache: two concurrent first calls
# both succeed (the bootstrap lock serialises them), and a later call bootstraps nothing.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log() { echo "e2e/launcher: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
export PANTS_LAUNCHER_CACHE="$work/cache"
expected="$(awk -F'"' '/^pants_version/ {print $2}' "$repo_root/pants.toml")"

cd "$repo_root"
./pants --no-pantsd --version >"$work/first.out" 2>"$work/first.err" &
first=$!
./pants --no-pantsd --version >"$work/second.out" 2>"$work/second.err" &
second=$!
wait "$first" || { cat "$work/first.err" >&2; fail "the first concurrent call failed."; }
wait "$second" || { cat "$work/second.err" >&2; fail "the second concurrent call failed."; }
for run in first second; do
  [[ "$(cat "$work/$run.out")" == "$expected" ]] || fail "$run call printed '$(cat "$work/$run.out")', not $expected."
done
installs="$(cat "$work/first.err" "$work/second.err" | grep -c "installing pantsbuild.pants" || true)"
[[ "$installs" == 1 ]] || fail "Pants was installed $installs times; the lock should make it once."
./pants --no-pantsd --version >"$work/third.out" 2>"$work/third.err"
grep -q "pants launcher:" "$work/third.err" && fail "a bootstrapped cache was bootstrapped again."
log "two concurrent first calls succeeded with one bootstrap; the third call reused the cache."

# `publish` to a registry that does not answer stops before Pants builds anything, naming the
# address and how to start the local registry.
mkdir "$work/unreachable"
cp "$repo_root/pants" "$work/unreachable/"
sed 's/^address = .*/address = "127.0.0.1:9"/' "$repo_root/pants.toml" >"$work/unreachable/pants.toml"
status=0
(cd "$work/unreachable" && PANTS_LAUNCHER_CACHE="$work/unreachable-cache" ./pants publish ::) \
  >"$work/publish.out" 2>"$work/publish.err" || status=$?
[[ "$status" == 2 ]] || { cat "$work/publish.err" >&2; fail "publish to a dead registry exited $status, not 2."; }
grep -q "the registry 127.0.0.1:9 (\[docker.registries.local\] address in" "$work/publish.err" &&
  grep -q "build-support/containers/setup.sh --registry" "$work/publish.err" ||
  { cat "$work/publish.err" >&2; fail "publish to a dead registry did not name the address and the fix."; }
[[ ! -e "$work/unreachable-cache" ]] || fail "publish to a dead registry bootstrapped Pants first."
log "publish to an unreachable registry stops at once, naming the address and the fix."
