#!/usr/bin/env bash
# Makes `./pants package` / `./pants publish` of docker_image targets work on a machine that
# has no Docker engine and cannot reach Docker Hub (offline CI, locked-down workstations):
#   - podman stands in for docker (Pants 2.17 only looks for a binary named `docker`);
#   - a local base image equivalent to python:3.11-slim is built from Debian's archive;
#   - with `--registry`, a local registry (distribution v2) listens on 127.0.0.1:5000.
# The ./pants launcher picks up what this writes to $PANTS_LAUNCHER_CACHE/containers.env.
# Machines with Docker and Docker Hub need none of this.
set -euo pipefail

cache_root="${PANTS_LAUNCHER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ml-monorepo-launcher}"
base_image="${LOCAL_BASE_IMAGE:-localhost/python:3.11-slim}"
debian_suite="${DEBIAN_SUITE:-bookworm}"  # bookworm's python3 is 3.11, like python:3.11-slim
debian_mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
registry_address="127.0.0.1:5000"
start_registry=false
[[ "${1:-}" == "--registry" ]] && start_registry=true

log() { echo "containers/setup: $*" >&2; }

install_packages() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if $start_registry && [[ ! -x /usr/bin/docker-registry ]]; then missing+=(docker-registry); fi
  ((${#missing[@]})) || return 0
  if [[ $(id -u) -ne 0 ]]; then
    log "missing ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]}) and re-run."
    exit 1
  fi
  log "installing ${missing[*]} ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

make_docker_shim() {
  mkdir -p "$cache_root/docker-shim"
  ln -sf "$(command -v podman)" "$cache_root/docker-shim/docker"
}

build_base_image() {
  if podman image exists "$base_image"; then
    log "base image $base_image already exists."
    return
  fi
  log "building $base_image from Debian $debian_suite (a few minutes) ..."
  local rootfs
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' RETURN
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$debian_suite" "$rootfs" "$debian_mirror" >"$cache_root/debootstrap.log" 2>&1 ||
    { log "debootstrap failed; see $cache_root/debootstrap.log"; exit 1; }
  # What python:3.11-slim would add that matters here: no apt lists, a UTF-8 locale.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$base_image" >/dev/null
  log "built $base_image ($(podman image inspect --format '{{.Size}}' "$base_image") bytes)."
}

run_registry() {
  local config="$cache_root/registry/config.yml"
  mkdir -p "$cache_root/registry/data" /etc/containers/registries.conf.d
  cat >"$config" <<YAML
version: 0.1
storage:
  filesystem:
    rootdirectory: $cache_root/registry/data
  delete:
    enabled: true
http:
  addr: $registry_address
YAML
  cat >/etc/containers/registries.conf.d/50-ml-monorepo-local.conf <<CONF
[[registry]]
location = "$registry_address"
insecure = true
CONF
  if curl -fsS "http://$registry_address/v2/" >/dev/null 2>&1; then
    log "registry already answers on $registry_address."
    return
  fi
  nohup /usr/bin/docker-registry serve "$config" >"$cache_root/registry/registry.log" 2>&1 &
  echo $! >"$cache_root/registry/pid"
  for _ in $(seq 50); do
    curl -fsS "http://$registry_address/v2/" >/dev/null 2>&1 && { log "registry on $registry_address."; return; }
    sleep 0.2
  done
  log "registry did not start; see $cache_root/registry/registry.log"
  exit 1
}

install_packages
make_docker_shim
build_base_image
$start_registry && run_registry
mkdir -p "$cache_root"
# Sandboxed machines (hybrid cgroups, no setrlimit) cannot start an OCI runtime for RUN
# steps; buildah's chroot isolation runs them without one.
cat >"$cache_root/containers.env" <<ENV
BASE_IMAGE=$base_image
BUILDAH_ISOLATION=chroot
ENV
log "done: ./pants now uses podman, and BASE_IMAGE=$base_image unless you set BASE_IMAGE."
