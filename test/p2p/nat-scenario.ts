// Real NATs in network namespaces (docs/volunteers.md). Run as root inside
// `unshare --net --mount` (natNetAvailable/runNatScenario in test/helpers/netns.ts): the
// namespaces and the tmpfs holding their names die with that process, even on a crash.
//
//   pub  11.0.0.10 ── br0 (the "internet", 11.0.0.0/24) ──┬── r1 11.0.0.1 ── 192.168.1.0/24 ── h1
//   (bootstrap, relay)                                    ├── r2 11.0.0.2 ── 192.168.2.0/24 ── h2
//                                                         ├── r3 11.0.0.3 ── 192.168.3.0/24 ── h3
//                                                         └── h4 11.0.0.20 (public, no NAT)
//
// r1 masquerades with Linux's port-preserving mapping and drops unsolicited inbound packets
// (a port-restricted cone NAT); r2 masquerades with --random-fully (a new random port per
// destination: a symmetric NAT); r3 is r1 plus a UPnP/NAT-PMP server (miniupnpd) that maps
// the port h3 (192.168.3.2) asks for. h4, on a public address, knows only h1's relayed address.
// Real `join` processes run in pub, h1, h2, h3 and h4. Prints one
// JSON line with what happened and when. On failure, NAT_SCENARIO_LOG_DIR (if set) gets every
// process's whole log.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { writeIdentity } from '../../src/node/identity-files.js'
import { silentLogger } from '../../src/node/logger.js'
import type { FileManifest } from '../../src/node/compare/manifest.js'
import { createManifestKeeper } from '../../src/node/divergence/index.js'
import { witnessName } from '../../src/protocol/tlog/entry.js'
import { peerIdOf } from '../../src/node/p2p/identity.js'
import { generateIdentity, type SigningIdentity } from '../../src/protocol/keys.js'
import { decodeMessage, signAnnouncement, signClaim } from '../../src/protocol/messages.js'
import type { Claim, Digest } from '../../src/protocol/types.js'

const ROOT = join(import.meta.dirname, '../..')
const MAIN = join(ROOT, 'src/cli/main.ts')
const PUBLISH = join(import.meta.dirname, 'nat-publish.ts')
const PUB_IP = '11.0.0.10'
const PORT = 4088
const HTTP_PORT = 8080
const TIMEOUT_MS = Number(process.env.NAT_SCENARIO_TIMEOUT_MS ?? 100_000)

function sh (cmd: string): void {
  execFileSync('sh', ['-ec', cmd], { stdio: ['ignore', 'ignore', 'pipe'] })
}

function topology (): void {
  sh(`
ip link set lo up
mkdir -p /run/netns && mount -t tmpfs tmpfs /run/netns
ip link add br0 type bridge && ip link set br0 up
for ns in pub r1 r2 r3 h1 h2 h3; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add pub0 type veth peer name eth0 netns pub
ip link set pub0 master br0 up
ip -n pub addr add ${PUB_IP}/24 dev eth0 && ip -n pub link set eth0 up
ip netns add h4 && ip -n h4 link set lo up
ip link add h4-0 type veth peer name eth0 netns h4
ip link set h4-0 master br0 up
ip -n h4 addr add 11.0.0.20/24 dev eth0 && ip -n h4 link set eth0 up
for i in 1 2 3; do
  ip link add r$i-wan type veth peer name wan netns r$i
  ip link set r$i-wan master br0 up
  ip -n r$i addr add 11.0.0.$i/24 dev wan && ip -n r$i link set wan up
  ip -n r$i link add lan type veth peer name eth0 netns h$i
  ip -n r$i addr add 192.168.$i.1/24 dev lan && ip -n r$i link set lan up
  ip -n h$i addr add 192.168.$i.2/24 dev eth0 && ip -n h$i link set eth0 up
  ip -n h$i route add default via 192.168.$i.1
  ip netns exec r$i sysctl -qw net.ipv4.ip_forward=1
  ip netns exec r$i iptables -A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
  ip netns exec r$i iptables -A FORWARD -i wan -o lan -j DROP
done
ip netns exec r1 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
ip netns exec r2 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE --random-fully
ip netns exec r3 iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
# r3 maps ports on request (miniupnpd, UPnP IGD and NAT-PMP). Debian's miniupnpd-iptables
# writes its rules through the legacy iptables API, into chains it expects to exist; the
# forwarded connections it makes (DNAT) pass the drop of unsolicited inbound packets.
ip netns exec r3 sh -ec '
  iptables-legacy -t nat -N MINIUPNPD; iptables-legacy -t nat -I PREROUTING -i wan -j MINIUPNPD
  iptables-legacy -t nat -N MINIUPNPD-POSTROUTING; iptables-legacy -t nat -I POSTROUTING -o wan -j MINIUPNPD-POSTROUTING
  iptables-legacy -t mangle -N MINIUPNPD; iptables-legacy -t mangle -I PREROUTING -i wan -j MINIUPNPD
  iptables-legacy -N MINIUPNPD; iptables-legacy -I FORWARD -i wan -o lan -j MINIUPNPD
  iptables -I FORWARD 1 -i wan -o lan -m conntrack --ctstate DNAT -j ACCEPT'
`)
}

interface Proc {
  name: string
  child: ChildProcess
  started: number
  summary: Promise<{ peerId: string, reachability?: Record<string, unknown> }>
  logs: Array<Record<string, unknown> & { msg?: string, time?: number }>
}

function join_ (ns: string, dir: string, args: string[]): Proc {
  const started = Date.now()
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', MAIN, 'join', '--json', '--no-mdns',
    '--data-dir', join(dir, 'data'), '--key', join(dir, 'key'), '--listen', `/ip4/0.0.0.0/tcp/${PORT}`, ...args], {
    cwd: ROOT,
    // No engine: these nodes verify, store and relay; the claims come from the publisher.
    env: { ...process.env, NEKO_LOG_FORMAT: 'json', NEKO_LOG_LEVEL: process.env.NAT_SCENARIO_LOG_LEVEL ?? 'info', DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const logs: Proc['logs'] = []
  createInterface({ input: child.stderr! }).on('line', line => {
    try { logs.push(JSON.parse(line) as Proc['logs'][number]) } catch { logs.push({ msg: line, time: Date.now() }) }
  })
  const summary = new Promise<{ peerId: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', line => { resolve(JSON.parse(line) as { peerId: string }) })
    child.once('exit', code => { reject(new Error(`${ns}: join exited (${String(code)}): ${logs.slice(-5).map(l => JSON.stringify(l)).join('\n')}`)) })
  })
  return { name: ns, child, started, summary, logs }
}

async function until<T> (what: string, check: () => T | undefined, timeoutMs = TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

async function untilAsync<T> (what: string, check: () => Promise<T | undefined>, timeoutMs = TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 1000))
  }
}

/** The kept checkpoints of the log of the node in `ns` (its /tlog/checkpoints), newest first; none while it does not answer. */
async function checkpointsOf (ns: string): Promise<Array<{ size: number, note: string }>> {
  const script = `fetch('http://127.0.0.1:${HTTP_PORT}/tlog/checkpoints').then(r => r.text()).then(t => process.stdout.write(t))`
  return await new Promise(resolve => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { timeout: 10_000, maxBuffer: 4 * 1024 * 1024 }, (err, out) => {
      try { resolve(err != null ? [] : (JSON.parse(out) as { items: Array<{ size: number, note: string }> }).items) } catch { resolve([]) }
    })
  })
}

const find = (p: Proc, pred: (l: Proc['logs'][number]) => boolean): Proc['logs'][number] | undefined => p.logs.find(pred)

/** miniupnpd in r3, serving UPnP IGD and NAT-PMP to 192.168.3.0/24, mapping into the chains `topology` made. */
function startMiniupnpd (root: string): Proc {
  const conf = join(root, 'miniupnpd.conf')
  execFileSync('sh', ['-ec', `cat > ${conf} <<EOF
ext_ifname=wan
listening_ip=lan
port=0
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime=yes
uuid=6e656b6f-7570-6e70-0000-000000000003
allow 1024-65535 192.168.3.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF`])
  // Its own pid file: the default one in /run is shared with any other miniupnpd on the host.
  const child = spawn('ip', ['netns', 'exec', 'r3', 'miniupnpd', '-f', conf, '-P', join(root, 'miniupnpd.pid'), '-d'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const logs: Proc['logs'] = []
  for (const s of [child.stdout!, child.stderr!]) createInterface({ input: s }).on('line', line => { logs.push({ msg: line, time: Date.now() }) })
  return { name: 'miniupnpd', child, started: Date.now(), summary: new Promise(() => {}), logs }
}

/** Stops the processes (SIGTERM, SIGKILL after 5 s) and waits for them to exit. */
async function stopAll (procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.exitCode == null && p.child.signalCode == null) p.child.kill('SIGTERM')
  await Promise.all(procs.map(async p => await new Promise(resolve => { if (p.child.exitCode != null || p.child.signalCode != null) resolve(null); else { p.child.once('exit', resolve); setTimeout(() => { p.child.kill('SIGKILL'); resolve(null) }, 5000).unref() } })))
}

/** Bytes a node's relayed connections carried, from the count it logs as each closes (all close when it stops). */
const relayedBytes = (p: Proc): number => p.logs.filter(l => l.msg === 'relayed connection closed').reduce((sum, l) => sum + Number(l.bytes), 0)

let published = 0
/** Publishes signed envelopes through a short-lived node in `ns` dialling that namespace's own node; tries twice. */
async function publish (root: string, ns: string, peerId: string, items: Array<{ topic: 'announcements' | 'claims', envelope: string }>): Promise<void> {
  const file = join(root, `publish-${published++}.json`)
  await writeFile(file, JSON.stringify(items))
  const once = async (): Promise<void> => { await new Promise<void>((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', PUBLISH, `/ip4/127.0.0.1/tcp/${PORT}/p2p/${peerId}`, file], { cwd: ROOT, timeout: 90_000, killSignal: 'SIGKILL' }, (err, _out, stderr) => {
      if (err != null) reject(new Error(`publishing in ${ns} failed (${err.killed ? 'timed out' : `exit ${String(err.code)}`}): ${stderr.slice(-400)}`))
      else resolve()
    })
  }) }
  await once().catch(once)
}

const manifestDigestOf = (digest: string): Digest => `sha256:${digest.repeat(63)}3`
const TARGET_V1 = { repository: 'https://example.test/neko.git', commit: 'c'.repeat(40), variant: 'v1', platform: 'linux/amd64', tag: 'v1.0.0' }

/**
 * What a rebuild of TARGET_V1 would have left in `join`'s manifest keeper (no engine runs in
 * the namespaces): the same files, one of them stamped with the build's own clock.
 */
function builtFiles (digest: string, mtime: number): FileManifest {
  const file = (path: string, t: number): FileManifest['layers'][number]['entries'][number] => ({ path, type: 'file', size: 12, mode: 0o644, uid: 0, gid: 0, mtime: t, sha256: createHash('sha256').update(path).digest('hex') })
  return {
    platform: 'linux/amd64',
    manifestDigest: manifestDigestOf(digest),
    layers: [{ diffId: `sha256:${digest.repeat(62)}55`, step: 'COPY . /app', entries: [file('app/neko', 1700000000), file('app/build-info', mtime)] }]
  }
}

function claimBy (builder: SigningIdentity, i: number, digest: string): string {
  const claim: Claim = {
    target: { repository: 'https://example.test/neko.git', commit: 'c'.repeat(40), variant: `v${i}`, platform: 'linux/amd64', tag: 'v1.0.0' },
    sourceDateEpoch: 1700000000,
    recipe: { name: 'neko', digest: `sha256:${'1'.repeat(64)}` },
    environment: { engine: { name: 'docker', version: '26.1.0' }, buildx: '0.13.1', buildkit: 'v0.13.2', kernel: '6.1.0', arch: 'amd64', emulated: false, tool: { name: 'neko-rebuilder', version: '0.1.0' } },
    startedOn: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
    finishedOn: '2026-02-01T00:01:00Z',
    result: { indexDigest: `sha256:${digest.repeat(64)}`, manifestDigest: manifestDigestOf(digest), configDigest: `sha256:${'4'.repeat(64)}`, diffIds: [] }
  }
  return JSON.stringify(signClaim(claim, builder))
}

const idOf = (envelope: string): string => decodeMessage(envelope, { allowEmbeddedKeys: true }).id

async function main (): Promise<void> {
  topology()
  const root = await mkdtemp(join(tmpdir(), 'neko-nat-'))
  const procs: Proc[] = []
  try {
    const ids: Record<string, SigningIdentity> = {}
    for (const n of ['pub', 'h1', 'h2', 'h3', 'h4']) {
      ids[n] = generateIdentity()
      await writeIdentity(join(root, n, 'key'), ids[n])
    }
    // Each NATed builder "built" v1 to a different image: its keeper holds the file manifest
    // of its own claim, where `join` keeps a rebuild's (data dir/manifests).
    for (const [n, digest, mtime] of [['h1', 'a', 1700000000], ['h2', 'b', 1765000000]] as const) {
      await createManifestKeeper({ log: silentLogger().forComponent('manifests') }, { dir: join(root, n, 'data', 'manifests') }).put(TARGET_V1, manifestDigestOf(digest), builtFiles(digest, mtime))
    }
    const announcer = generateIdentity()
    const policy = join(root, 'policy.json')
    await writeFile(policy, JSON.stringify({
      version: 1,
      builders: ['h1', 'h2'].map(n => ({ name: n, operator: n, publicKey: ids[n]!.publicKeyPem })),
      announcers: [{ name: 'release', publicKey: announcer.publicKeyPem }],
      threshold: 2,
      minOperators: 2,
      allowedDissent: 0
    }))
    const pubPeer = peerIdOf(ids.pub!.privateKey)
    const t0 = Date.now()
    const pub = join_('pub', join(root, 'pub'), ['--policy', policy])
    procs.push(pub)
    await pub.summary
    const bootstrap = `/ip4/${PUB_IP}/tcp/${PORT}/p2p/${pubPeer}`
    // Each builder serves its log on loopback inside its own namespace, to read its cosignatures.
    // Its log grows by a few entries at a time here: time earns a push round to its witnesses
    // every few seconds, not every few minutes (the push budget, docs/transparency.md).
    const builder = ['--policy', policy, '--bootstrap', bootstrap, '--http', `127.0.0.1:${HTTP_PORT}`, '--witness-round', '10']
    const h1 = join_('h1', join(root, 'h1'), builder)
    const h2 = join_('h2', join(root, 'h2'), builder)
    procs.push(h1, h2)
    const upnpd = startMiniupnpd(root)
    procs.push(upnpd)
    await until('miniupnpd listening', () => find(upnpd, l => l.msg?.includes('HTTP listening on port') === true)?.time, 20_000)
    const h3 = join_('h3', join(root, 'h3'), ['--policy', policy, '--bootstrap', bootstrap])
    procs.push(h3)
    const [p1, p2, p3] = await Promise.all([h1.summary, h2.summary, h3.summary])

    const reach = (p: Proc, mode: string): number | undefined => find(p, l => l.msg === 'reachability changed' && l.reachability === mode)?.time
    const connectedTo = (p: Proc, peer: string): number | undefined => find(p, l => l.msg === 'peer connected' && l.peer === peer)?.time
    const pubPublicAt = await until('pub confirmed public', () => reach(pub, 'public'))
    const mappedAt = until('h3 port-mapped', () => reach(h3, 'port-mapped'))
    mappedAt.catch(() => {}) // awaited below; a timeout is reported there
    const relayedAt = await Promise.all([h1, h2].map(async p => await until(`${p.name} relayed`, () => reach(p, 'relayed'))))
    const relays = [h1, h2].map(p => find(p, l => l.msg === 'reachability changed' && l.reachability === 'relayed')?.relays)
    // A public node given only h1's relayed address reaches it through the relay; DCUtR then
    // replaces that connection by a direct one (h1 dials h4's public address).
    const h1Circuit = (find(h1, l => l.msg === 'reachability changed' && l.reachability === 'relayed')?.addrs as string[] | undefined)?.find(a => a.startsWith(`/ip4/${PUB_IP}/`) && a.includes('/p2p-circuit/'))
    if (h1Circuit === undefined) throw new Error('h1 advertised no relayed address through the public node')
    const h4 = join_('h4', join(root, 'h4'), ['--policy', policy, '--bootstrap', h1Circuit])
    procs.push(h4)
    const p4 = await h4.summary
    const bootstrapAt = [h1, h2].map(p => connectedTo(p, pubPeer))

    // Gossip from behind each NAT to the other: an announcement and a claim from h1, a
    // dissenting claim from h2 (a different image digest).
    const announcement = JSON.stringify(signAnnouncement({
      repository: 'https://example.test/neko.git',
      tag: 'v1.0.0',
      commit: 'c'.repeat(40),
      recipe: { name: 'neko', digest: `sha256:${'1'.repeat(64)}` },
      targets: [{ variant: 'v1', platform: 'linux/amd64' }],
      announcedAt: new Date().toISOString()
    }, announcer))
    const c1 = claimBy(ids.h1!, 1, 'a')
    const c2 = claimBy(ids.h2!, 1, 'b')
    const stored = (p: Proc, id: string): number | undefined => find(p, l => (l.msg === 'claim stored' || l.msg === 'announcement stored') && l.id === id)?.time
    const published = (p: Proc, id: string): number | undefined => stored(p, id)
    await Promise.all([publish(root, 'h1', p1.peerId, [{ topic: 'announcements', envelope: announcement }, { topic: 'claims', envelope: c1 }]), publish(root, 'h2', p2.peerId, [{ topic: 'claims', envelope: c2 }])])
    const sent1 = published(h1, idOf(c1))!
    const sent2 = published(h2, idOf(c2))!
    const h2GotC1 = await until('h2 stores h1\'s claim', () => stored(h2, idOf(c1)))
    const h1GotC2 = await until('h1 stores h2\'s claim', () => stored(h1, idOf(c2)))
    // The two claims of v1 disagree: each builder's divergence service fetches the other's file manifest
    // across both NATs, over the relay, signs a divergence report, and the other stores it.
    const reportSigned = (p: Proc, dissent: string): number | undefined => find(p, l => l.msg === 'divergence report signed' && l.dissent === dissent)?.time
    const manifestOverRelay = (p: Proc, peer: string): number | undefined => find(p, l => l.msg === 'file manifest over a relay' && l.peer === peer)?.time
    const reportReceived = (p: Proc, signer: string): number | undefined => find(p, l => l.msg === 'divergence report received' && l.keyId === signer)?.time
    const [h1Reported, h2Reported] = await Promise.all([
      until('h1 signs a report on h2\'s claim', () => reportSigned(h1, ids.h2!.keyId)),
      until('h2 signs a report on h1\'s claim', () => reportSigned(h2, ids.h1!.keyId))
    ])
    const [h2GotReport, h1GotReport] = await Promise.all([
      until('h2 stores h1\'s report', () => reportReceived(h2, ids.h1!.keyId)),
      until('h1 stores h2\'s report', () => reportReceived(h1, ids.h2!.keyId))
    ])
    const reportCauses = (p: Proc): unknown => find(p, l => l.msg === 'divergence report signed')?.causes
    // Each log grows again, so each witness asks the other's node for a consistency proof.
    const c1b = claimBy(ids.h1!, 2, 'a')
    const c2b = claimBy(ids.h2!, 2, 'a')
    await Promise.all([publish(root, 'h1', p1.peerId, [{ topic: 'claims', envelope: c1b }]), publish(root, 'h2', p2.peerId, [{ topic: 'claims', envelope: c2b }])])
    const proofOverRelay = (p: Proc, peer: string): number | undefined => find(p, l => l.msg === 'consistency proof over a relay' && l.peer === peer)?.time
    const h1ProvedH2 = await until('h1 witnesses h2\'s log over the relay', () => proofOverRelay(h1, p2.peerId))
    const h2ProvedH1 = await until('h2 witnesses h1\'s log over the relay', () => proofOverRelay(h2, p1.peerId))
    // The proofs led to cosignatures: each log's newest checkpoint, over the second claims,
    // carries the other builder's (the push budget holds none back for good, relayed or not).
    const newestCosigned = async (ns: string, witness: string): Promise<{ at: number, size: number } | undefined> => {
      const newest = (await checkpointsOf(ns))[0]
      return newest?.note.includes(`\u2014 ${witnessName(witness)} `) === true ? { at: Date.now(), size: newest.size } : undefined
    }
    const [h1CosignedByH2, h2CosignedByH1] = await Promise.all([
      untilAsync('h1\'s newest checkpoint cosigned by h2', async () => await newestCosigned('h1', ids.h2!.keyId)),
      untilAsync('h2\'s newest checkpoint cosigned by h1', async () => await newestCosigned('h2', ids.h1!.keyId))
    ])
    // h3's router mapped its port: h2, behind the symmetric NAT, reaches h3 directly (dialling
    // its mapped address, or upgraded from a relayed connection by DCUtR), while h1-h2 stays relayed.
    const h3MappedAt = await mappedAt
    const directTo = (p: Proc, peer: string): number | undefined => find(p, l => (l.msg === 'peer connected' && l.peer === peer && l.relayed !== true) || (l.msg === 'direct connection to a peer reached over a relay' && l.peer === peer))?.time
    const h2DirectH3 = await until('h2 connects directly to h3', () => directTo(h2, p3.peerId) ?? directTo(h3, p2.peerId))
    const h4RelayedToH1 = find(h4, l => l.msg === 'peer connected' && l.peer === p1.peerId)?.relayed === true
    const h1UpgradedH4 = await until('h1 upgrades its relayed connection with h4 to a direct one', () => find(h1, l => l.msg === 'direct connection to a peer reached over a relay' && l.peer === p4.peerId)?.time ?? find(h4, l => l.msg === 'direct connection to a peer reached over a relay' && l.peer === p1.peerId)?.time)
    // Give DCUtR its tries (3 x 5 s at most) before judging whether a direct connection came.
    await new Promise(resolve => setTimeout(resolve, 6_000))
    const direct = (p: Proc, peer: string): number | undefined => find(p, l => l.msg === 'direct connection to a peer reached over a relay' && l.peer === peer)?.time
    // The bootstrap goes away. h2 knew only its address: it stays in the network through the
    // peer it found meanwhile (h3), and a claim published at h3 afterwards still reaches it.
    await stopAll([pub])
    const gone = Date.now()
    const c3 = claimBy(ids.h1!, 3, 'a')
    await publish(root, 'h3', p3.peerId, [{ topic: 'claims', envelope: c3 }])
    const sent3 = published(h3, idOf(c3))!
    const h2GotC3 = await until('h2 stores a claim published after the bootstrap left', () => stored(h2, idOf(c3)), 30_000)
    const unsigned = (p: Proc): unknown[] => p.logs.filter(l => l.msg === 'log gave no usable consistency proof: not cosigned').map(l => l.reason)
    const ms = (at: number | undefined, from: number): number | null => at === undefined ? null : at - from
    // Everything of the release has travelled: stop the nodes, whose relayed connections then
    // close and log what they carried. Every circuit here joins two of h1–h4 through the public
    // node, so each relayed byte is counted at both ends.
    await stopAll(procs)
    const relayed = { h1: relayedBytes(h1), h2: relayedBytes(h2), h3: relayedBytes(h3), h4: relayedBytes(h4) }
    process.stdout.write(JSON.stringify({
      relayedBytes: { ...relayed, total: Math.round((relayed.h1 + relayed.h2 + relayed.h3 + relayed.h4) / 2) },
      pub: { publicMs: pubPublicAt - t0 },
      h1: { nat: 'port-restricted', bootstrapMs: ms(bootstrapAt[0], h1.started), relayedMs: relayedAt[0]! - h1.started, relays: relays[0], directMs: ms(direct(h1, p2.peerId) ?? direct(h2, p1.peerId), h1.started), storedOtherMs: h1GotC2 - sent2, reportedMs: h1Reported - h1GotC2, manifestOverRelay: manifestOverRelay(h1, p2.peerId) !== undefined, causes: reportCauses(h1), paths: find(h1, l => l.msg === 'divergence report signed')?.paths, storedOtherReport: h1GotReport >= h2Reported, provedOtherMs: h1ProvedH2 - h1.started, cosignedByOtherMs: h1CosignedByH2.at - h1.started, cosignedSize: h1CosignedByH2.size, unsigned: unsigned(h1) },
      h2: { nat: 'symmetric', bootstrapMs: ms(bootstrapAt[1], h2.started), relayedMs: relayedAt[1]! - h2.started, relays: relays[1], storedOtherMs: h2GotC1 - sent1, reportedMs: h2Reported - h2GotC1, manifestOverRelay: manifestOverRelay(h2, p1.peerId) !== undefined, causes: reportCauses(h2), paths: find(h2, l => l.msg === 'divergence report signed')?.paths, storedOtherReport: h2GotReport >= h1Reported, provedOtherMs: h2ProvedH1 - h2.started, cosignedByOtherMs: h2CosignedByH1.at - h2.started, cosignedSize: h2CosignedByH1.size, unsigned: unsigned(h2) },
      h3: { nat: 'port-restricted, UPnP', mappedMs: h3MappedAt - h3.started, mappedAddrs: find(h3, l => l.msg === 'reachability changed' && l.reachability === 'port-mapped')?.addrs, directWithSymmetricMs: h2DirectH3 - h3.started, upgradedByDcutr: direct(h2, p3.peerId) !== undefined || direct(h3, p2.peerId) !== undefined },
      // h2 was given only the public node's address and runs without mDNS: a connection it
      // dialled itself to h3 was to a peer found through the network (the DHT).
      h2FoundH3: find(h2, l => l.msg === 'peer connected' && l.peer === p3.peerId && l.direction === 'outbound' && l.relayed !== true) !== undefined,
      h4: { nat: 'none (public)', reachedH1OverRelay: h4RelayedToH1, upgradedMs: h1UpgradedH4 - h4.started },
      pubPeer,
      bootstrapGone: { storedMs: h2GotC3 - sent3, sinceGoneMs: h2GotC3 - gone, h2LostBootstrap: find(h2, l => l.msg === 'peer disconnected' && l.peer === pubPeer) !== undefined },
      summary: p1.reachability,
      relayedBetween: find(h1, l => l.msg === 'peer connected' && l.peer === p2.peerId)?.relayed === true || find(h2, l => l.msg === 'peer connected' && l.peer === p1.peerId)?.relayed === true
    }) + '\n')
  } catch (err) {
    if (process.env.NAT_SCENARIO_LOG_DIR != null) for (const p of procs) await writeFile(join(process.env.NAT_SCENARIO_LOG_DIR, `${p.name}.log`), p.logs.map(l => JSON.stringify(l)).join('\n'))
    for (const p of procs) process.stderr.write(`--- ${p.name}\n${p.logs.filter(l => l.msg !== 'relayed connection closed').slice(-30).map(l => JSON.stringify(l).slice(0, 600)).join('\n')}\n`)
    process.stdout.write(JSON.stringify({ error: (err as Error).message }) + '\n')
    process.exitCode = 1
  } finally {
    await stopAll(procs)
    await rm(root, { recursive: true, force: true })
  }
}

await main()
