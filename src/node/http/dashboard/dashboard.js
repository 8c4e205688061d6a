// Dashboard of the public feed: a matrix of releases × (variant, platform), coloured by verdict.
// Vanilla JS, no build step; everything it shows comes from the JSON API of the same node.

const STATUS_TEXT = {
  reproducible: 'reproducible',
  unreproducible: 'unreproducible',
  disputed: 'disputed',
  failed: 'failed',
  unsettled: 'unsettled',
  pending: 'pending'
}

const state = document.getElementById('state')
const matrix = document.getElementById('matrix')
const details = document.getElementById('details')
const detailsBody = document.getElementById('details-body')
const detailsTitle = document.getElementById('details-title')
let openCell = null

function el (tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') node.className = v
    else node.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    node.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return node
}

async function getJson (path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } })
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`)
  return await res.json()
}

function short (digest) {
  return typeof digest === 'string' ? digest.replace(/^sha256:/, '').slice(0, 12) : '—'
}

function columnKey (t) { return `${t.variant} ${t.platform}` }

async function load () {
  // The newest releases only: one consensus request per row.
  const releases = (await getJson('/api/v1/releases?limit=30')).items
  if (releases.length === 0) {
    state.textContent = 'No release has been announced to this node yet.'
    return
  }
  const results = await Promise.all(releases.map(r =>
    getJson(`/api/v1/consensus/${encodeURIComponent(r.tag)}?repository=${encodeURIComponent(r.repository)}`).catch(() => null)))
  const rows = results.filter(Boolean)
  const columns = []
  const seen = new Set()
  for (const row of rows) {
    for (const t of row.targets) {
      const k = columnKey(t)
      if (!seen.has(k)) { seen.add(k); columns.push({ key: k, variant: t.variant, platform: t.platform }) }
    }
  }
  columns.sort((a, b) => a.variant.localeCompare(b.variant) || a.platform.localeCompare(b.platform))
  render(rows, columns)
  state.textContent = `${rows.length} release${rows.length === 1 ? '' : 's'}, ${columns.length} variant and platform pair${columns.length === 1 ? '' : 's'}. Select a cell for its claims.`
}

function render (rows, columns) {
  const head = el('tr', {}, el('th', { scope: 'col' }, 'Release'),
    columns.map(c => el('th', { scope: 'col' }, c.variant, el('br'), el('small', {}, c.platform))))
  const body = rows.map(row => {
    const byKey = new Map(row.targets.map(t => [columnKey(t), t]))
    return el('tr', {},
      el('th', { scope: 'row' }, row.tag, el('small', {}, row.repository), el('small', {}, `commit ${row.commit.slice(0, 12)}`)),
      columns.map(c => {
        const t = byKey.get(c.key)
        if (t === undefined) return el('td', { class: 'empty' }, el('span', { 'aria-label': 'not built for this release' }, '–'))
        // The notation of `status` and `verify`: answered out of all trusted builders, never "everyone".
        const votes = `${t.agreeing.length} agree${sameEngineText(t)} · ${t.trustedCount} of ${t.trustedCount + t.outstanding} answered · need ${t.threshold}`
        const button = el('button', {
          type: 'button',
          class: `cell ${t.status}`,
          'aria-expanded': 'false',
          'aria-controls': 'details',
          'data-tag': row.tag,
          'data-variant': t.variant,
          'data-platform': t.platform,
          'data-status': t.status
        }, STATUS_TEXT[t.status] ?? t.status,
        el('small', {}, votes))
        button.setAttribute('aria-label', `${row.tag} ${t.variant} ${t.platform}: ${t.status}, ${votes}`)
        button.addEventListener('click', () => toggle(button, row, t))
        return el('td', {}, button)
      }))
  })
  matrix.replaceChildren(el('table', { class: 'matrix' }, el('thead', {}, head), el('tbody', {}, body)))
}

function toggle (button, release, target) {
  if (openCell === button) {
    button.setAttribute('aria-expanded', 'false')
    details.hidden = true
    openCell = null
    return
  }
  if (openCell !== null) openCell.setAttribute('aria-expanded', 'false')
  openCell = button
  button.setAttribute('aria-expanded', 'true')
  showDetails(release, target)
  details.hidden = false
  detailsTitle.focus()
}

/** ` (+N same engine)` as `status` writes it: votes for the leading digest folded into a counted vote's engine. */
function sameEngineText (t) {
  const n = (t.sameEngine ?? []).filter(x => x.digest === t.leadingDigest).length
  return n > 0 ? ` (+${n} same engine)` : ''
}

function claimRows (target) {
  const rows = []
  const add = (c, outcome) => rows.push({ ...c, outcome })
  target.agreeing.forEach(c => add(c, 'agrees'))
  // Trusted claims folded into another key's vote (one engine, one witness): read and
  // judged, so shown, with the key they were counted as.
  for (const c of target.sameEngine ?? []) add({ ...c, trusted: true }, `same engine as ${c.countedAs.slice(0, 12)}, counted once`)
  target.dissenting.forEach(c => add(c, 'dissents'))
  target.failed.forEach(c => add(c, 'failed'))
  target.untrusted.forEach(c => add(c, 'untrusted'))
  return rows
}

function divergenceText (d) {
  if (!d) return ''
  if (d.kind === 'layer' || d.kind === 'layer-count') {
    return `first differing layer: #${d.index}${d.step ? ` (${d.step})` : ''}: ${short(d.expected)} vs ${short(d.actual)}`
  }
  return { config: 'same layers, different image config', manifest: 'same config, different manifest', index: 'same manifest, different index' }[d.kind] ?? d.kind
}

/** A claim's build log excerpt: the last lines, control characters shown as `?` (it came from the network). */
function logLines (excerpt) {
  return excerpt.replace(/\r\n?/g, '\n').split('\n').map(l => l.trimEnd()).filter(l => l !== '').slice(-12)
    // eslint-disable-next-line no-control-regex
    .map(l => l.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?')).join('\n')
}

function showDetails (release, t) {
  detailsTitle.textContent = `${release.tag} · ${t.variant} · ${t.platform}`
  const published = t.published.match === 'unknown'
    ? 'not checked or unknown'
    : `${t.published.match === 'yes' ? 'matches' : 'does NOT match'} ${t.published.digest ?? ''}`
  const summary = el('dl', {},
    el('dt', {}, 'Verdict'), el('dd', {}, el('span', { class: `badge ${t.status}` }, t.status)),
    el('dt', {}, t.consensusDigest ? 'Consensus digest' : 'Leading digest'),
    el('dd', { class: 'digest' }, t.consensusDigest ?? (t.leadingDigest ? `${t.leadingDigest} (not agreed)` : '—')),
    el('dt', {}, 'Agreeing'), el('dd', {}, `${t.agreeing.length} trusted builder${t.agreeing.length === 1 ? '' : 's'}${sameEngineText(t)} (threshold ${t.threshold}; ${t.trustedCount} trusted answered, ${t.outstanding} not yet)`),
    t.reason ? [el('dt', {}, 'Why'), el('dd', {}, t.reason)] : [],
    el('dt', {}, 'Published image'), el('dd', {}, published),
    el('dt', {}, 'Repository'), el('dd', {}, release.repository),
    el('dt', {}, 'Commit'), el('dd', { class: 'digest' }, release.commit),
    t.equivocating.length > 0 ? [el('dt', {}, 'Equivocating keys'), el('dd', { class: 'digest' }, t.equivocating.map(e => e.keyId.slice(0, 24)).join(', '))] : [],
    // Keys not counted for what they did elsewhere: a log proven to show two views.
    (t.setAside ?? []).length > 0 ? [el('dt', {}, 'Set-aside keys'), el('dd', { class: 'digest' }, t.setAside.map(x => `${x.keyId.slice(0, 24)}: ${x.reason}`).join('; '))] : [])
  const rows = claimRows(t)
  const table = rows.length === 0
    ? el('p', {}, 'No claim for this target yet.')
    : el('table', { class: 'claims' },
      el('thead', {}, el('tr', {}, ['Builder', 'Trust', 'Outcome', 'Digest or failure'].map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map(c => el('tr', {},
        el('td', {}, c.operator ?? '', c.operator ? el('br') : '', el('code', { title: c.keyId }, c.keyId.slice(0, 24))),
        el('td', {}, el('span', { class: c.trusted ? 'trusted' : 'untrusted' }, c.trusted ? 'trusted' : 'untrusted')),
        el('td', {}, c.outcome),
        el('td', {},
          c.digest ? el('span', { class: 'digest' }, c.digest) : '',
          c.failure ? `${c.failure.class}: ${c.failure.message}${c.failure.step ? ` (${c.failure.step})` : ''}` : '',
          c.failure?.logExcerpt ? el('pre', { class: 'log', 'aria-label': 'last lines of the build log' }, logLines(c.failure.logExcerpt)) : '',
          c.divergence ? el('p', { class: 'divergence' }, divergenceText(c.divergence)) : '')))))
  detailsBody.replaceChildren(summary, el('h3', {}, 'Claims'), table)
  showTests(release, t).catch(err => {
    detailsBody.append(el('p', { class: 'tests-error' }, `Could not load the smoke test results: ${err.message}`))
  })
  if (t.dissenting.length > 0) {
    showCauses(release, t).catch(err => {
      detailsBody.append(el('p', { class: 'causes-error' }, `Could not load the divergence reports: ${err.message}`))
    })
  }
}

// Smoke tests builders ran in their rebuilt images (signed in-toto Test Results): beside the verdict, never votes.
async function showTests (release, t) {
  const q = `repository=${encodeURIComponent(release.repository)}&commit=${encodeURIComponent(release.commit)}`
  const results = (await getJson(`/api/v1/test-results?${q}`)).items
    .map(i => ({ keyId: i.keyId, ...i.testResult }))
    .filter(r => r.target.variant === t.variant && r.target.platform === t.platform)
  if (results.length === 0 || openCell === null || detailsTitle.textContent !== `${release.tag} · ${t.variant} · ${t.platform}`) return
  detailsBody.append(el('section', { class: 'tests', 'aria-label': 'Smoke tests' },
    el('h3', {}, 'Smoke tests (not votes)'),
    el('table', { class: 'tests' },
      el('thead', {}, el('tr', {}, ['Builder', 'Result', 'Command', 'Image'].map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, results.map(r => el('tr', { 'data-result': r.result },
        el('td', {}, el('code', { title: r.keyId }, r.keyId.slice(0, 24))),
        el('td', {}, `${r.result}${r.exitCode !== undefined && r.result === 'FAILED' ? ` (exit ${r.exitCode})` : ''}${r.gpu ? ' · GPU' : ''}`),
        el('td', {}, el('code', {}, r.command.join(' '))),
        el('td', { class: 'digest' }, r.manifestDigest === t.consensusDigest ? 'the agreed image' : r.manifestDigest)))))))
}

// Why the dissenting builds differ: the node's signed divergence reports for this target.
async function showCauses (release, t) {
  const q = `tag=${encodeURIComponent(release.tag)}&repository=${encodeURIComponent(release.repository)}`
  const reports = (await getJson(`/api/v1/divergences?${q}`)).items
    .map(i => ({ keyId: i.keyId, ...i.report }))
    .filter(r => r.target.variant === t.variant && r.target.platform === t.platform && r.target.commit === release.commit)
  if (openCell === null || detailsTitle.textContent !== `${release.tag} · ${t.variant} · ${t.platform}`) return
  const section = el('section', { class: 'causes', 'aria-label': 'Why builds differ' }, el('h3', {}, 'Why builds differ'))
  if (reports.length === 0) {
    section.append(el('p', {}, 'No divergence report yet: a builder of this target compares file manifests with a dissenting builder once both have claimed.'))
  }
  // One row per cause and step, whatever pair of builders found it: reports come per
  // ordered pair (N builders, up to N(N-1) reports), and most say the same.
  const pairs = new Map()
  const groups = new Map()
  for (const r of reports) {
    const pair = [r.a.keyId, r.b.keyId].sort()
    const pairKey = pair.join(' ')
    const seen = pairs.get(pairKey) ?? { keys: pair, total: 0, explained: 0 }
    seen.total = Math.max(seen.total, r.paths.total)
    seen.explained = Math.max(seen.explained, r.paths.explained)
    pairs.set(pairKey, seen)
    for (const c of r.causes) {
      const k = `${c.id}\n${c.steps.join('\n')}`
      const g = groups.get(k) ?? { cause: c, count: 0, paths: new Set(), evidence: new Set(), pairs: new Set() }
      g.count = Math.max(g.count, c.count)
      for (const p of c.paths) g.paths.add(p)
      for (const e of c.evidence ?? []) g.evidence.add(e)
      g.pairs.add(pairKey)
      groups.set(k, g)
    }
  }
  const pairText = k => pairs.get(k).keys.map(x => x.slice(0, 12)).join(' ↔ ')
  if (reports.length > 0) {
    section.append(el('p', {}, `${reports.length} report${reports.length === 1 ? '' : 's'} over ${pairs.size} pair${pairs.size === 1 ? '' : 's'} of builders: `,
      [...pairs.keys()].map(k => `${pairText(k)} (${pairs.get(k).total} differing path${pairs.get(k).total === 1 ? '' : 's'}, ${pairs.get(k).explained} with a known cause)`).join('; '), '.'))
    const rows = [...groups.values()].sort((x, y) => y.count - x.count || x.cause.id.localeCompare(y.cause.id))
    section.append(el('table', { class: 'causes' },
      el('thead', {}, el('tr', {}, ['Cause', 'Files', 'Dockerfile step', 'Fix', 'Found between'].map(h => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, rows.map(g => el('tr', { 'data-cause': g.cause.id },
        el('td', {}, el('code', {}, g.cause.id), el('br'), el('small', {}, g.cause.summary),
          ...[...g.evidence].slice(0, 2).map(e => el('small', { class: 'evidence' }, el('br'), e))),
        // The count, then the files: an unknown cause is only useful with its paths.
        el('td', { class: 'count' }, String(g.count), [...g.paths].slice(0, 5).flatMap(p => [el('br'), el('code', { class: 'path' }, p)])),
        el('td', {}, g.cause.steps.map(st => el('code', { class: 'step' }, st))),
        el('td', {}, el('code', {}, g.cause.fix)),
        el('td', { class: 'pairs' }, [...g.pairs].map(k => el('span', { class: 'pair' }, pairText(k), el('br')))))))))
  }
  detailsBody.append(section)
}

// The node's log and any split view it has proven: a log that showed two histories is named here;
// so is each log whose newest checkpoint this node, as a witness, has not cosigned yet, with why.
async function loadTlog () {
  const [{ log, items }, behind, under] = await Promise.all([getJson('/tlog/split-views'), getJson('/tlog/behind'), getJson('/tlog/under-witnessed')])
  const section = document.getElementById('tlog')
  if (log === null && items.length === 0 && behind.items.length === 0 && under.items.length === 0) return
  section.hidden = false
  document.getElementById('tlog-state').textContent = log === null
    ? 'This node keeps no log of its own.'
    : `This node's log holds ${log.size} signed entr${log.size === 1 ? 'y' : 'ies'} (${log.origin}); witnesses cosign its checkpoints.`
  document.getElementById('split-views').replaceChildren(...items.map(s => el('li', { role: 'alert', class: 'split-view' },
    'Split view: the log of key ', el('code', {}, s.logKeyId.slice(0, 24)), ` signed two inconsistent checkpoints (seen ${s.detectedAt}). `,
    el('a', { href: '/tlog/split-views' }, 'proof'))))
  document.getElementById('witness-behind').replaceChildren(...behind.items.map(b => el('li', { class: 'behind', 'data-log': b.logKeyId },
    'Witness behind on the log of key ', el('code', {}, b.logKeyId.slice(0, 24)), `: cosigned size ${b.cosignedSize}, seen size ${b.seenSize} (${b.reason}, since ${b.since}).`)))
  document.getElementById('under-witnessed').replaceChildren(...under.items.map(u => el('li', { class: 'under-witnessed', 'data-log': u.logKeyId },
    'Under-witnessed: the log of key ', el('code', {}, u.logKeyId.slice(0, 24)), `: size ${u.size} cosigned by ${u.cosigners.length} of ${u.expected} expected witnesses (since ${u.since}).`)))
}

// How this node is reached: public, port-mapped or only through relays, and how many of its
// connections are direct (/api/v1/peers; absent where no p2p node runs).
async function loadReach () {
  const r = await getJson('/api/v1/peers')
  if (r.peerId == null) return
  const how = r.mode === 'relayed' ? `relayed (through ${r.relays.map(p => p.slice(-8)).join(', ')})` : r.mode === 'local' ? 'reachable on its local network only (so far)' : r.mode
  const total = r.connections.direct + r.connections.relayed
  const p = document.getElementById('reach')
  p.textContent = `This node is ${how}; ${r.connections.direct} of ${total} connection${total === 1 ? '' : 's'} direct${r.relayServer.serving ? `; it relays for ${r.relayServer.reservations} peer${r.relayServer.reservations === 1 ? '' : 's'}` : ''}.`
  p.hidden = false
}

loadReach().catch(() => {})

// A node still reading its peers' history says how far it has to go: verdicts may still change.
async function loadCatchUp () {
  const c = (await getJson('/healthz')).catchUp
  const line = document.getElementById('catch-up')
  line.hidden = !(c != null && c.behind > 0)
  if (line.hidden) return
  const left = typeof c.etaSeconds === 'number' ? `, about ${c.etaSeconds < 90 ? `${Math.max(1, Math.round(c.etaSeconds))} s` : `${Math.round(c.etaSeconds / 60)} min`} left` : ''
  line.textContent = `Catching up: ${c.behind.toLocaleString('en-US')} messages behind its peers (${c.perSecond.toLocaleString('en-US')} a second${left}). Verdicts may still change.`
}

loadCatchUp().catch(() => {})

// This node's own host: after infrastructure errors on every retry it builds and signs nothing,
// and says so here rather than leaving its silence unexplained.
async function loadHost () {
  // Absent where no daemon runs.
  const { host } = await getJson('/api/v1/builders')
  // Only a daemon keeps a build queue (and sees notices): others would answer 404.
  if (host != null) loadLapsed().catch(() => {})
  if (host?.state !== 'broken') return
  const p = document.getElementById('host')
  p.replaceChildren(`This node's host is broken since ${host.since}: it builds and signs nothing. `, el('code', {}, host.reason),
    ' Fix the host, then run ', el('code', {}, `neko-rebuilder jobs retry '${host.job}'`), '.')
  p.hidden = false
}

loadHost().catch(() => {})

// Builders that take targets (signed notices) and let them expire without a claim: each lapse
// delays a target by a notice's life, so they are named here.
async function loadLapsed () {
  const { lapsedTakers } = await getJson('/api/v1/jobs')
  if (!Array.isArray(lapsedTakers) || lapsedTakers.length === 0) return
  const p = document.getElementById('lapsed')
  p.replaceChildren('Builders whose notices keep expiring without a claim: ',
    ...lapsedTakers.flatMap((l, i) => [i > 0 ? ', ' : '', el('code', {}, l.name ?? l.keyId.slice(0, 16)), ` (${l.lapsed} lapsed, last ${l.lastTarget})`]), '.')
  p.hidden = false
}

loadTlog().catch(err => {
  const section = document.getElementById('tlog')
  section.hidden = false
  document.getElementById('tlog-state').textContent = `Could not load the log: ${err.message}`
})

load().catch(err => {
  state.textContent = `Could not load the feed: ${err.message}`
})
