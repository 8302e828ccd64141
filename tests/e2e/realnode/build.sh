#!/usr/bin/env bash
# Real-node tier prerequisites, built once per machine and cached beside the kube-apiserver
# (tests/e2e/apiserver_build.sh builds the kubelet in the same `make`):
#   - containerd, runc, the CNI loopback plugin, debootstrap, iptables (Debian packages);
#   - the CRI sandbox image (pause.c here, compiled static);
#   - a Debian bookworm minbase root filesystem with python3 and python3-venv, the base that
#     tests/e2e/realnode/image.py replays deploy/Containerfile's steps onto.
#
#   tests/e2e/realnode/build.sh     -> prints the cache directory
#
# Cache: ${K8S_GPU_MCP_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp}/realnode. Idempotent, and a
# flock makes a concurrent run wait. Needs root (debootstrap, and later the kubelet and containerd).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE="${K8S_GPU_MCP_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp}/realnode"
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
log() { echo "realnode_build: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "needs root (containerd, kubelet, debootstrap)"; exit 1; }
mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9

need=()
for cmd in containerd runc ctr debootstrap iptables gcc; do command -v "$cmd" >/dev/null || need+=("$cmd"); done
[ -x /usr/lib/cni/loopback ] || need+=(cni)
if [ ${#need[@]} -gt 0 ]; then
  log "installing containerd runc containernetworking-plugins debootstrap iptables gcc (missing: ${need[*]})"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    containerd runc containernetworking-plugins debootstrap iptables gcc libc6-dev >&2
fi

if [ ! -s "$CACHE/pause.tar" ] || [ "$HERE/pause.c" -nt "$CACHE/pause.tar" ]; then
  log "building the pause image"
  work=$(mktemp -d)
  mkdir "$work/rootfs"
  gcc -Os -static -o "$work/rootfs/pause" "$HERE/pause.c"
  strip "$work/rootfs/pause"
  (cd "$HERE/../../.." && python3 -m tests.e2e.realnode.image archive "$work/rootfs" registry.k8s.io/pause:3.6 "$CACHE/pause.tar.tmp" \
    '{"Entrypoint":["/pause"],"User":"65535:65535"}')
  mv -f "$CACHE/pause.tar.tmp" "$CACHE/pause.tar"
  rm -rf "$work"
fi

if [ ! -s "$CACHE/rootfs-base.tar" ]; then
  start=$(date +%s)
  log "debootstrap $SUITE minbase + python3 python3-venv (a few minutes)"
  work="$CACHE/rootfs.build"
  rm -rf "$work"
  debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$work" "$MIRROR" >&2
  rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/*
  tar -C "$work" --numeric-owner --xattrs -cf "$CACHE/rootfs-base.tar.tmp" .
  mv -f "$CACHE/rootfs-base.tar.tmp" "$CACHE/rootfs-base.tar"
  rm -rf "$work"
  log "base root filesystem in $(( $(date +%s) - start ))s"
fi
echo "$CACHE"
