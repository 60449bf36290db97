#!/usr/bin/env bash
# End-to-end proof of the pre-push gate: in a throwaway clone with the hooks installed,
# a push whose change breaks a test is refused, and the push that fixes it goes through.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache_root="${PANTS_LAUNCHER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-monorepo-launcher}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log() { echo "e2e/pre-push: $*" >&2; }

venv="$cache_root/pre-commit-venv"
if [[ ! -x "$venv/bin/pre-commit" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$repo_root/build-support/pre-commit-requirements.txt"
fi
export PATH="$venv/bin:$PATH"

git clone -q --bare "$repo_root" "$work/remote.git"
git clone -q "$work/remote.git" "$work/clone"
# The clone's mypy cache starts as a copy of this checkout's (see new_project.sh).
bash "$repo_root/build-support/mypy-cache-dir.sh" "$work/clone" "$repo_root"
cd "$work/clone"
git config user.email "e2e@example.com"
git config user.name "e2e"
pre-commit install >/dev/null
remote_tip() { git --git-dir="$work/remote.git" rev-parse main; }
before="$(remote_tip)"

# A torch-free project's test: the gate's work is the same for any project, and mnist's test
# (torch to import, mypy over torch's stubs) made each push cost more without proving more.
test_file=projects/feature-selection/tests/test_feature_selection_errors.py
cat >>"$test_file" <<'PY'


def test_the_gate_must_refuse_this() -> None:
    assert format_columns(["zip"]) == "'city'"
PY
git commit -qam "A change that breaks a test"
log "pushing a commit that breaks a test (expect refusal) ..."
if git push -q origin HEAD:main >"$work/bad-push.log" 2>&1; then
  cat "$work/bad-push.log" >&2
  log "FAIL: the push of a failing test was accepted."
  exit 1
fi
grep -q "test_the_gate_must_refuse_this" "$work/bad-push.log" ||
  { cat "$work/bad-push.log" >&2; log "FAIL: the push failed, but not because of the test."; exit 1; }
[[ "$(remote_tip)" == "$before" ]] || { log "FAIL: the remote moved."; exit 1; }
log "refused, as it should be."

sed -i "s/== \"'city'\"/== \"'zip'\"/" "$test_file"
git commit -qam "Fix the test"
log "pushing the fix (expect acceptance) ..."
if ! git push -q origin HEAD:main >"$work/good-push.log" 2>&1; then
  cat "$work/good-push.log" >&2
  log "FAIL: a push with passing tests was refused."
  exit 1
fi
[[ "$(remote_tip)" == "$(git rev-parse HEAD)" ]] || { log "FAIL: the remote did not get the fix."; exit 1; }
log "accepted, as it should be."
# The clone's pantsd (its process title names the build root) would outlive the directory.
pkill -f "pantsd \[$work/clone\]" 2>/dev/null || true
