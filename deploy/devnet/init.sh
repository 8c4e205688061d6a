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

log "building $image"
SOURCE_DATE_EPOCH=$(git -C "$deploy" log -1 --pretty=%ct) "${compose[@]}" build node1

# Data directories at the same path on the host and in the containers, owned by the
# image's unprivileged user; made through the engine, so no sudo is needed here.
log "data directories in $base"
docker run --rm -u 0 -v "$base:$base" --entrypoint sh "$image" -c \
  "for n in node1 node2 node3; do install -d -o node -g node -m 0750 \"$base/\$n\" \"$base/\$n/tmp\"; done"

# An existing identity is kept (keygen refuses to overwrite) and read back.
identity() { # service
  "${compose[@]}" run --rm --no-deps -T "$1" keygen --out "$base/$1/identity" >/dev/null 2>&1 || true
  "${compose[@]}" run --rm --no-deps -T --entrypoint cat "$1" "$base/$1/identity/public.pem"
}

pems=()
for n in node1 node2 node3; do
  log "identity of $n"
  pems+=("$(identity "$n")")
done

mkdir -p "$here/announcer"
if [ ! -f "$here/announcer/private.pem" ]; then
  log "announcer identity in $here/announcer (keep private.pem secret)"
  docker run --rm -u "$(id -u):$(id -g)" -v "$here/announcer:/out" --entrypoint node "$image" \
    /app/dist/cli/main.js keygen --out /out >/dev/null
fi
announcer_pem=$(cat "$here/announcer/public.pem")

log "writing $here/trust.json"
# Three builders run by three operators (one per node here); two must agree on a digest.
docker run --rm -i --entrypoint node "$image" --input-type=module -e '
  let input = ""
  for await (const chunk of process.stdin) input += chunk
  const [p1, p2, p3, announcer] = input.split("\n--\n")
  const builders = [p1, p2, p3].map((publicKey, i) => ({ name: `node${i + 1}`, operator: `devnet-operator-${i + 1}`, publicKey: publicKey.trim() + "\n" }))
  const policy = { version: 1, builders, announcers: [{ name: "devnet-announcer", publicKey: announcer.trim() + "\n" }], threshold: 2, minOperators: 2, allowedDissent: 0 }
  process.stdout.write(JSON.stringify(policy, null, 2) + "\n")
' >"$here/trust.json" <<<"${pems[0]}
--
${pems[1]}
--
${pems[2]}
--
$announcer_pem"

log "peer id of node1"
peer=$(docker run --rm -i --entrypoint node "$image" --input-type=module -e '
  import { createPublicKey } from "node:crypto"
  import { peerIdOf } from "/app/dist/node/p2p/identity.js"
  let pem = ""
  for await (const chunk of process.stdin) pem += chunk
  process.stdout.write(peerIdOf(createPublicKey(pem)))
' <<<"${pems[0]}")
printf 'DOCKER_GID=%s\nNODE1_PEER_ID=%s\n' "$gid" "$peer" >"$deploy/.env"
log "node1 is $peer; start with: docker compose -f deploy/compose.yaml up -d"
