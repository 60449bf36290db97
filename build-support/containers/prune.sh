#!/usr/bin/env bash
# Frees the disk that image builds fill: this repository's images (any registry prefix, any
# tag) and the dangling layers that multi-stage builds leave behind. Each torch image is
# 1-2 GB plus as much again in build stages, so a machine that builds for days runs out of
# disk unless something prunes; CI calls this before it builds and after each proof.
# The base image (localhost/python:3.11-slim) and other projects' images are kept.
# With --registry-data it also empties the local registry's storage when no registry is
# running (a stopped session's registry keeps every pushed layer on disk otherwise).
set -euo pipefail
cache_root="${PANTS_LAUNCHER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-monorepo-launcher}"
if [[ "${1:-}" == "--registry-data" ]] && ! curl -fsS http://127.0.0.1:5000/v2/ >/dev/null 2>&1; then
  rm -rf "$cache_root/registry/data"
fi
command -v podman >/dev/null || command -v docker >/dev/null || exit 0
engine="$(command -v podman || command -v docker)"
leftovers=()
before=$(df -Pk . | awk 'NR == 2 {print $4}')
mapfile -t ids < <("$engine" images --format '{{.Repository}} {{.ID}}' 2>/dev/null |
  awk '$1 ~ /(^|\/)ml-monorepo\// {print $2}' | sort -u)
((${#ids[@]})) && "$engine" rmi -f "${ids[@]}" >/dev/null 2>&1 || true
# A build that Pants cancels (it restarts one when a file changes under it) leaves podman's
# build container behind, outside `ps -a`, holding its layers: 20 GB on this machine once.
if [[ "$engine" == *podman ]]; then
  mapfile -t leftovers < <("$engine" ps -a --external --format '{{.ID}} {{.Status}}' 2>/dev/null |
    awk '$2 == "Storage" {print $1}')
  for id in "${leftovers[@]}"; do "$engine" rm --storage "$id" >/dev/null 2>&1 || true; done
fi
"$engine" image prune -f >/dev/null 2>&1 || true
after=$(df -Pk . | awk 'NR == 2 {print $4}')
echo "containers/prune: removed ${#ids[@]} image(s), ${#leftovers[@]} leftover build container(s); $(((after - before) / 1048576)) GB freed," \
  "$((after / 1048576)) GB free." >&2
