#!/usr/bin/env bash
# End-to-end proof that `publish --changed-since` pushes exactly the images a change affects.
# In a throwaway clone, each scenario commits one change on a branch off main, publishes
#   ./pants --changed-since=main --changed-dependents=transitive \
#     --filter-target-type=docker_image publish
# with the commit's short SHA as a tag, then asks the registry's HTTP API which images got
# that tag: any image missing is a false negative, any extra one a false positive. Finally it
# pulls a published image and runs its entry point.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
registry="127.0.0.1:5000"
work="$(mktemp -d)"
cleanup() {
  pkill -f "pantsd \[$work/clone\]" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "e2e/publish: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
# The end of a Pants log without the [stats] counters block, which would hide the error.
log_tail() { grep -vE '^\s+[a-z_]+: [0-9]+$|\[INFO\] Counters:' "$1" | tail -40 >&2; }

bash "$repo_root/build-support/containers/setup.sh" --registry

git clone -q "$repo_root" "$work/clone"
cd "$work/clone"
git config user.email "e2e@example.com"
git config user.name "e2e"
git checkout -q -B main  # whatever was checked out in the source is "main" for the proof

# Every docker_image in the repository, by repository name: a new image must join a scenario.
mapfile -t all_images < <(./pants list --filter-target-type=docker_image :: 2>/dev/null |
  xargs ./pants peek 2>/dev/null | python3 -c '
import json, sys
for target in json.load(sys.stdin):
    print(target["repository"])' | sort)
log "images in the repository: ${all_images[*]}"

published_with_tag() {
  local tag="$1" image
  for image in "${all_images[@]}"; do
    # An image never pushed has no tags list: the registry answers 404.
    if { curl -fsS "http://$registry/v2/$image/tags/list" 2>/dev/null || echo '{}'; } |
      python3 -c 'import json,sys; sys.exit(0 if sys.argv[1] in (json.load(sys.stdin).get("tags") or []) else 1)' "$tag"; then
      echo "$image"
    fi
  done
}

scenario() {
  local name="$1" change="$2"
  shift 2
  local expected
  expected="$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')"
  git checkout -q -B "e2e-$name" main
  bash -c "$change"
  git commit -qam "e2e: $name"
  local tag started elapsed actual
  tag="$(git rev-parse --short HEAD)"
  started=$(date +%s.%N)
  GIT_COMMIT="$tag" ./pants --changed-since=main --changed-dependents=transitive \
    --filter-target-type=docker_image publish >"$work/$name.log" 2>&1 ||
    { log_tail "$work/$name.log"; fail "$name: publish failed."; }
  elapsed=$(python3 -c "import time,sys; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$started")
  actual="$(published_with_tag "$tag" | sort | tr '\n' ' ')"
  [[ "$actual" == "$expected" ]] ||
    { log_tail "$work/$name.log"; fail "$name: expected [${expected% }], registry has [${actual% }] tagged $tag."; }
  log "$name: published [${actual% }] in ${elapsed}s, as expected."
  echo "$name ${elapsed}s [${actual% }]" >>"$work/summary"
}

scenario "readme-only" "echo >> README.md"
scenario "mnist-only" "echo '# e2e' >> projects/mnist/src/mnist/model.py" ml-monorepo/mnist-train
scenario "feature-selection-lockfile" "echo >> 3rdparty/python/feature-selection.lock" \
  ml-monorepo/feature-selection
# A test of a shared lib is packed into no image.
scenario "lib-test-only" "echo '# e2e' >> libs/ml_core/tests/test_ml_core_cli.py"
# The BUILD prelude writes every Dockerfile; pants.toml holds [docker] (build args, registries).
# No import reaches them: every docker_image depends on //:image-definition, which owns them.
scenario "prelude" "echo '# e2e' >> build-support/macros.py" "${all_images[@]}"
scenario "pants-config" "sed -i 's/^default_repository = .*/&  # e2e/' pants.toml" "${all_images[@]}"
# The shared layers' lockfile: the torch layer (3rdparty/python:torch-layer) sits under every
# image that packs torch; the LM layer's pins (lm-layer.txt) shape only the four LM images.
scenario "image-layers-lockfile" "echo >> 3rdparty/python/image-layers.lock" \
  ml-monorepo/mnist-train ml-monorepo/kv-serve ml-monorepo/neuron-audit ml-monorepo/rlhf \
  ml-monorepo/lm-pretrain
scenario "lm-layer-pins" "echo >> 3rdparty/python/lm-layer.txt" \
  ml-monorepo/kv-serve ml-monorepo/neuron-audit ml-monorepo/rlhf ml-monorepo/lm-pretrain
# libs/lm (its corpus module) is packed by kv-serve, neuron-audit, rlhf and its own pretraining
# image, not by mnist or feature-selection.
scenario "lm-lib" "echo '# e2e' >> libs/lm/src/lm/corpus.py" \
  ml-monorepo/kv-serve ml-monorepo/neuron-audit ml-monorepo/rlhf ml-monorepo/lm-pretrain
# ml_core (its CLI helper, timer, metadata) is shared by every deployable.
scenario "shared-lib" "echo '# e2e' >> libs/ml_core/src/ml_core/timer.py" "${all_images[@]}"

# The last scenario (shared-lib) published every image with HEAD's short SHA. kv-serve's entry
# point imports torch and transformers, so its usage text proves that the layers stack up from
# the registry: the shared torch layer, the requirements above it, then the code.
image="$registry/ml-monorepo/kv-serve:$(git rev-parse --short HEAD)"
podman rmi -f "$image" >/dev/null 2>&1 || true
podman pull -q "$image" >/dev/null
log "pulled $image back from the registry; running its entry point ..."
if ! podman run --rm "$image" --help >"$work/run.log" 2>&1; then
  # Sandboxes that forbid setrlimit cannot start any OCI runtime; run the image's entry point
  # from its own root filesystem as its own user instead.
  grep -q "setrlimit\|rlimit" "$work/run.log" || { cat "$work/run.log" >&2; fail "the image does not run."; }
  container="$(podman create "$image")"
  root="$(podman mount "$container")"
  chroot --userspec=10001:10001 "$root" /usr/bin/env HOME=/home/app /app/venv/pex --help >"$work/run.log" 2>&1 ||
    { cat "$work/run.log" >&2; podman rm -f "$container" >/dev/null; fail "the image's entry point fails."; }
  podman umount "$container" >/dev/null
  podman rm -f "$container" >/dev/null
fi
grep -q "usage:" "$work/run.log" || { cat "$work/run.log" >&2; fail "no usage text from the image."; }
log "the published image runs: $(grep -m1 "usage:" "$work/run.log")"
cat "$work/summary"
