#!/usr/bin/env bash
# Validate every Kubernetes manifest under deploy/ offline, against a pinned Kubernetes version,
# with kubernetes-validate's strict schemas (unknown fields are errors). Also checks that
# deploy/kustomization.yaml lists every manifest and maps every image they use.
#   build-support/validate-manifests.sh              # CI, and the pre-push hook
#   build-support/validate-manifests.sh --self-test  # also prove a broken manifest is refused
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${PANTS_LAUNCHER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-monorepo-launcher}"
KUBERNETES_VERSION="1.34.0"
VALIDATOR="kubernetes-validate==1.37.0"
log() { echo "validate-manifests: $*" >&2; }

venv="$cache_root/kubernetes-validate-venv"
if [[ ! -x "$venv/bin/kubernetes-validate" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "$VALIDATOR" >"$venv/pip.log" 2>&1 ||
    { cat "$venv/pip.log" >&2; log "could not install $VALIDATOR (is a package index reachable?)"; exit 1; }
fi

cd "$repo_root"
mapfile -t manifests < <(find deploy -name '*.yaml' ! -name kustomization.yaml | sort)
[[ ${#manifests[@]} -gt 0 ]] || { log "no manifests under deploy/"; exit 1; }
"$venv/bin/kubernetes-validate" --quiet --strict -k "$KUBERNETES_VERSION" "${manifests[@]}"
log "${#manifests[@]} manifests valid against Kubernetes $KUBERNETES_VERSION (strict)."

"$venv/bin/python" - "${manifests[@]}" <<'PY'
import sys
from pathlib import Path

import yaml

kustomization = yaml.safe_load(Path("deploy/kustomization.yaml").read_text())
listed = {str(Path("deploy") / entry) for entry in kustomization.get("resources", [])}
mapped = {image["name"] for image in kustomization.get("images", [])}
problems = []
for manifest in sys.argv[1:]:
    if manifest not in listed:
        problems.append(f"{manifest} is not in deploy/kustomization.yaml's resources")
    for document in yaml.safe_load_all(Path(manifest).read_text()):
        spec = (document or {}).get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            if container["image"] not in mapped:
                problems.append(
                    f"{manifest}: image {container['image']!r} has no entry in "
                    "deploy/kustomization.yaml's images (so no published tag would fill it)"
                )
for entry in sorted(listed):
    if not Path(entry).is_file():
        problems.append(f"deploy/kustomization.yaml lists {entry}, which does not exist")
for problem in problems:
    print(f"validate-manifests: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
log "deploy/kustomization.yaml lists every manifest and maps every image."

if [[ "${1:-}" == "--self-test" ]]; then
  broken="$(mktemp --suffix=.yaml)"
  trap 'rm -f "$broken"' EXIT
  sed 's/^  replicas: 2$/  replicas: "two"\n  replica: 2/' deploy/kv-serve/deployment.yaml >"$broken"
  if "$venv/bin/kubernetes-validate" --quiet --strict -k "$KUBERNETES_VERSION" "$broken" >/dev/null 2>&1; then
    log "FAIL: a Deployment with replicas: \"two\" and an unknown field passed validation."
    exit 1
  fi
  log "self-test: a broken Deployment is refused."
fi
