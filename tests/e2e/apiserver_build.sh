#!/usr/bin/env bash
# Build (once per machine) a real kube-apiserver and kubelet v1.20.2 from Debian's `kubernetes` source
# package (one `make`, which shares most packages between the two), and install the other e2e
# prerequisites (etcd 3.4, openssl). No Docker, no internet beyond Debian. The kubelet serves the
# real-node tier (tests/e2e/realnode/).
#
#   tests/e2e/apiserver_build.sh        -> prints the path of the cached kube-apiserver binary
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp/kube-apiserver (override: K8S_GPU_MCP_E2E_CACHE).
# Idempotent: a cached binary that answers --version is reused. A flock on the cache dir makes a second
# concurrent run wait for the first instead of building twice. See docs/kubernetes.md.
set -euo pipefail

VERSION=v1.20.2
SRC_DIR_NAME=kubernetes-1.20.5+really1.20.2
GO_PKG=golang-1.23-go
GO_BIN=/usr/lib/go-1.23/bin
CACHE="${K8S_GPU_MCP_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-gpu-mcp}"
BIN="$CACHE/kube-apiserver"
KUBELET="$CACHE/kubelet"

log() { echo "apiserver_build: $*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; fi
fi

binary_ok() {
  [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "$VERSION" &&
    [ -x "$KUBELET" ] && "$KUBELET" --version 2>/dev/null | grep -q "$VERSION"
}

ensure_runtime_packages() {
  # etcd + openssl are needed to *run* the cluster even when the binary is cached.
  if ! command -v etcd >/dev/null || ! command -v openssl >/dev/null; then
    log "installing etcd-server, openssl"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server openssl >&2
  fi
}

ensure_build_packages() {
  local src=/etc/apt/sources.list.d/k8s-gpu-mcp-src.sources
  if [ ! -f "$src" ]; then
    # deb-src for the source package; bookworm-backports for Go 1.23 (the
    # toolchain the build was validated with).
    log "adding deb-src + bookworm-backports ($src)"
    printf '%s\n' \
      'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' '' \
      'Types: deb deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
      | $SUDO tee "$src" >/dev/null
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports \
    "$GO_PKG" etcd-server etcd-client rsync make openssl dpkg-dev >&2
}

build() {
  local work="$CACHE/build"
  rm -rf "$work"
  mkdir -p "$work"
  log "fetching Debian source package kubernetes ($SRC_DIR_NAME) into $work"
  (cd "$work" && apt-get source -qq kubernetes >&2)
  log "building kube-apiserver and kubelet $VERSION (about 8 min on 2 cores, 1.4 GB RSS)"
  (
    cd "$work/$SRC_DIR_NAME"
    PATH="$GO_BIN:$PATH" GOFLAGS= KUBE_GIT_VERSION="$VERSION" KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 \
      KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=debian-orig GOCACHE="$work/gocache" \
      make WHAT="cmd/kube-apiserver cmd/kubelet" >&2
  )
  install -m 0755 "$work/$SRC_DIR_NAME/_output/bin/kube-apiserver" "$BIN.tmp"
  mv -f "$BIN.tmp" "$BIN"
  install -m 0755 "$work/$SRC_DIR_NAME/_output/bin/kubelet" "$KUBELET.tmp"
  mv -f "$KUBELET.tmp" "$KUBELET"
  rm -rf "$work"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9
ensure_runtime_packages
if binary_ok; then
  log "cached: $BIN"
else
  start=$(date +%s)
  ensure_build_packages
  build
  binary_ok || { log "built binary does not report $VERSION"; exit 1; }
  log "built $BIN in $(( $(date +%s) - start ))s"
fi
echo "$BIN"
