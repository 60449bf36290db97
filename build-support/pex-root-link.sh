#!/usr/bin/env bash
# Points ~/.pex (pex's own cache) at Pants' named pex_root, so that building a PEX and running
# it use one cache. Pants 2.17 starts the pex tool with PEX_ROOT stripped from its environment,
# so pex builds every PEX in ~/.pex (downloads, unpacked wheels, their zips) while Pants runs
# PEXes with PEX_ROOT=<named caches>/pex_root: every wheel ended up unpacked in both, the tests
# unpacked the built PEXes a second time, and a CI cache of Pants' folders missed pex's build
# cache (a PEX with torch then took 78 s to build instead of 7-11 s). With one cache, a cold
# `./pants test ::` took 331 s instead of 373 s (README, "Measured").
#
# ./pants and .pants.bootstrap run it before Pants. A ~/.pex folder (the user's own pex cache)
# is left alone, and so is a working link; a link whose cache was deleted is pointed here.
# PANTS_LAUNCHER_PEX_ROOT_LINK=0 turns it off.
set -euo pipefail
[[ "${PANTS_LAUNCHER_PEX_ROOT_LINK:-1}" != 0 ]] || exit 0

link="$HOME/.pex"
if [[ -e "$link" ]]; then
  exit 0 # a folder, or a link that works (to this checkout's cache or another's)
fi
pex_root="${PANTS_NAMED_CACHES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pants/named_caches}/pex_root"
mkdir -p "$pex_root"
# Made aside and renamed over, so a concurrent launcher never sees ~/.pex missing (pex would
# then create a folder there).
staged="$link.staged.$$"
ln -sfn "$pex_root" "$staged"
mv -Tf "$staged" "$link" 2>/dev/null || mv -hf "$staged" "$link" 2>/dev/null ||
  { rm -f "$staged"; exit 1; }
