#!/usr/bin/env bash
# Prepares the compose devnet (deploy/compose.yaml): builds the node image, creates each
# node's data directory (under NEKO_DEVNET_DIR, default /var/lib/neko-rebuilder/devnet)
# and its Ed25519 identity there, an announcer identity on the host, then
# writes the shared trust policy (deploy/devnet/trust.json) and deploy/.env. Keys are made
# here, on this machine, never shipped in the repository. Safe to re-run: existing keys
# are kept (keygen never overwrites one) and the policy is rewritten from them.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
deploy=$(dirname "$here")
compose=(docker compose -f "$deploy/compose.yaml")
image=${NEKO_IMAGE:-neko-rebuilder:dev}
base=${NEKO_DEVNET_DIR:-/var/lib/neko-rebuilder/devnet}
log() { printf '[devnet-init] %s\n' "$*" >&2; }

gid=$(stat -c %g /var/run/docker.sock)
log "docker socket group id: $gid"
# Compose needs these before it can even build; the peer id is filled in below.
printf 'DOCKER_GID=%s\nNODE1_PEER_ID=%s\n' "$gid" pending >"$deploy/.env"

if [ "${NEKO_SKIP_BUILD:-0}" = 1 ]; then
  log "using $image as built (NEKO_SKIP_BUILD=1)"
else
  log "building $image"
  SOURCE_DATE_EPOCH=$(git -C "$deploy" log -1 --pretty=%ct) "${compose[@]}" build node1
fi

# Data directories at the same path on the host and in the containers, owned by the
# image's unprivileged user; made through the engine, so no sudo is needed here.
log "data directories in $base"
docker run --rm -u 0 -v "$base:$base" --entrypoint sh "$image" -c \
  "for n in node1 node2 node3; do install -d -o node -g node -m 0750 \"$base/\$n\" \"$base/\$n/tmp\"; done"

# Compose mounts trust.json into every node: it must exist as a file before the first
# `compose run`, or the engine creates a directory in its place.
[ -f "$here/trust.json" ] || : >"$here/trust.json"

# An existing identity is kept: keygen refuses to overwrite one.
for n in node1 node2 node3; do
  log "identity of $n"
  "${compose[@]}" run --rm --no-deps -T "$n" keygen --out "$base/$n/identity" >/dev/null 2>&1 || true
done

mkdir -p "$here/announcer"
if [ ! -f "$here/announcer/private.pem" ]; then
  log "announcer identity in $here/announcer (keep private.pem secret)"
  docker run --rm -u "$(id -u):$(id -g)" -v "$here/announcer:/out" "$image" keygen --out /out >/dev/null
fi

log "writing $here/trust.json"
# Three builders run by three operators (one per node here). They all build on this host's
# one engine, which the quorum counts as one witness (docs/consensus.md): k = 1, and any two
# different digests make a target unreproducible.
# Only public keys are read: node1's data dir is mounted read-only for it.
docker run --rm -u 0 -v "$base:$base:ro" -v "$here/announcer/public.pem:/announcer.pem:ro" "$image" --log-level error policy \
  --builder "node1@devnet-operator-1=$base/node1/identity/public.pem" \
  --builder "node2@devnet-operator-2=$base/node2/identity/public.pem" \
  --builder "node3@devnet-operator-3=$base/node3/identity/public.pem" \
  --announcer devnet-announcer=/announcer.pem \
  --threshold 1 --min-operators 1 >"$here/trust.json"

log "peer id of node1"
peer=$(docker run --rm -u 0 -v "$base:$base:ro" "$image" --log-level error peer-id "$base/node1/identity/public.pem")
printf 'DOCKER_GID=%s\nNODE1_PEER_ID=%s\n' "$gid" "$peer" >"$deploy/.env"
log "node1 is $peer; start with: docker compose -f deploy/compose.yaml up -d"
