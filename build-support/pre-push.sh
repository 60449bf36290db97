#!/usr/bin/env bash
# Runs one Pants gate on what a push changes, plus everything that depends on it.
# Called by the pre-push hooks in .pre-commit-config.yaml: `build-support/pre-push.sh lint`.
# pre-commit exports PRE_COMMIT_FROM_REF (the remote's old tip) for pre-push hooks.
set -euo pipefail
goal="$1"
cd "$(git rev-parse --show-toplevel)"

base="${PRE_COMMIT_FROM_REF:-}"
if [[ -z "$base" || "$base" =~ ^0+$ ]] || ! git cat-file -e "$base^{commit}" 2>/dev/null; then
  # A new branch: compare with main as the remote knows it, else check everything.
  base="$(git merge-base HEAD origin/main 2>/dev/null || true)"
fi
if [[ -z "$base" ]]; then
  exec ./pants "$goal" ::
fi
exec ./pants --changed-since="$base" --changed-dependents=transitive "$goal"
