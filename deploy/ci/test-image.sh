#!/usr/bin/env bash
# CI check of the deployment: builds the node image (deploy/Dockerfile) twice from scratch
# on a locally made base (deploy/base/build-base.sh; no registry is reachable in CI) and
# requires the same manifest digest both times, then runs the compose devnet on that image,
# announces a fixture release and waits until the network reaches a verdict on it.
# Run from a clean checkout (it builds the committed tree, HEAD). Needs root or the
# docker group, mmdebstrap, docker compose.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
log() { printf '[test-image] %s\n' "$*" >&2; }
work=$(mktemp -d /tmp/neko-image-ci.XXXXXX)
project=neko-ci-$$
image=neko-rebuilder:ci-$$
ctx=$work/ctx
compose=(docker compose -p "$project" -f "$ctx/deploy/compose.yaml" -f "$work/ci.yaml")
cleanup() {
  if [ -f "$ctx/deploy/.env" ]; then
    "${compose[@]}" logs --no-color --tail=40 >&2 2>&1 || true
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  docker image rm "$image" >/dev/null 2>&1 || true
  # Files the containers wrote belong to their user: removed through the engine.
  docker run --rm -u 0 -v "$work:$work" --entrypoint rm "${base:-busybox}" -rf "$work/devnet" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

base=$(bash "$root/deploy/base/build-base.sh")
log "base $base"

# The committed tree only: an edit in progress must not reach one build and not the other.
mkdir -p "$ctx"
git -C "$root" archive HEAD | tar -x -C "$ctx"
epoch=$(git -C "$root" log -1 --pretty=%ct)
# The local base's mirror has moved on from the snapshot and the pinned versions: take its own.
args=(-f "$ctx/deploy/Dockerfile" --progress=plain --no-cache
  --build-arg "BASE=$base" --build-arg DEBIAN_SNAPSHOT= --build-arg DOCKER_CLI_VERSION=
  --build-arg DOCKER_BUILDX_VERSION= --build-arg GIT_VERSION= --build-arg CA_CERTIFICATES_VERSION=
  --build-arg "SOURCE_DATE_EPOCH=$epoch")
digest() { tar -xOf "$1" index.json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).manifests[0].digest))'; }
for n in 1 2; do
  log "build $n of 2 (from scratch)"
  start=$(date +%s)
  docker buildx build "${args[@]}" --output "type=oci,dest=$work/image-$n.tar,name=$image,rewrite-timestamp=true" "$ctx" >"$work/build-$n.log" 2>&1 \
    || { tail -40 "$work/build-$n.log" >&2; exit 1; }
  log "build $n: $(digest "$work/image-$n.tar") in $(( $(date +%s) - start )) s"
done
if [ "$(digest "$work/image-1.tar")" != "$(digest "$work/image-2.tar")" ]; then
  log "the image is not reproducible: two builds of one commit differ"
  node "$root/dist/cli/main.js" diff "$work/image-1.tar" "$work/image-2.tar" >&2 || true
  exit 1
fi
log "reproducible: both builds are $(digest "$work/image-1.tar")"
docker load -i "$work/image-1.tar" >/dev/null
rm -f "$work"/image-*.tar

# The compose devnet on that image, with its data under $work and a fixture release that
# every node can read at the same path.
export NEKO_IMAGE=$image NEKO_DEVNET_DIR=$work/devnet NEKO_SKIP_BUILD=1 COMPOSE_PROJECT_NAME=$project
NEKO_HTTP_PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
export NEKO_HTTP_PORT
fixture=$work/fixture
{
  echo 'services:'
  for n in node1 node2 node3; do printf '  %s:\n    volumes:\n      - %s:%s:ro\n' "$n" "$fixture" "$fixture"; done
} >"$work/ci.yaml"
bash "$ctx/deploy/devnet/init.sh"
mkdir -p "$fixture"
docker run --rm -u 0 -v "$work:$work" --entrypoint chown "$image" 1000:1000 "$fixture"
docker run --rm -v "$fixture:$fixture" --entrypoint node "$image" --input-type=module -e \
  "import { createFixtureProject } from '/app/dist/node/devnet/fixture-project.js'; await createFixtureProject({ dir: '$fixture', tag: 'v1.0.0' })"
"${compose[@]}" up -d
# shellcheck disable=SC1091
. "$ctx/deploy/.env"
log "announcing the fixture release to node1 ($NODE1_PEER_ID)"
# As the image's user, who owns the fixture (git refuses a repository of another owner), with
# a copy of the announcer key it may read.
docker run --rm -u 0 -v "$ctx/deploy/devnet/announcer:/src:ro" -v "$work:$work" --entrypoint sh "$image" -c \
  "install -d -o 1000 -g 1000 -m 0700 '$work/announcer' && install -o 1000 -g 1000 -m 0600 /src/private.pem /src/public.pem '$work/announcer/'"
"${compose[@]}" run --rm --no-deps -T -u 1000:1000 -v "$work/announcer:/announcer:ro" -e TMPDIR=/tmp \
  node1 announce --repo "$fixture" --tag v1.0.0 --key /announcer --to "/dns4/node1/tcp/4088/p2p/$NODE1_PEER_ID" --timeout 60

deadline=$(( $(date +%s) + ${NEKO_VERDICT_TIMEOUT:-420} ))
while :; do
  rc=0
  "${compose[@]}" run --rm --no-deps -T node1 --log-level error status v1.0.0 --node http://node1:8080 --policy /etc/neko-rebuilder/trust.json >"$work/status.txt" 2>&1 || rc=$?
  if [ "$rc" != 4 ] && [ "$rc" != 2 ]; then break; fi
  if [ "$(date +%s)" -ge "$deadline" ]; then cat "$work/status.txt" >&2; log "no verdict in time (status exit $rc)"; exit 1; fi
  sleep 10
done
cat "$work/status.txt"
if [ "$rc" != 0 ]; then log "the devnet's verdict is not reproducible (status exit $rc)"; exit 1; fi
log "the compose devnet reached a verdict: reproducible"
