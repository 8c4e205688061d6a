import { createHash } from 'node:crypto'
import type { SigningIdentity } from '../../protocol/keys.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import { verifierIdOf } from '../../protocol/vsa.js'
import { announcerTrusted, evaluateRelease } from '../consensus/evaluate.js'
import { readRelease, storeReleaseSource } from '../consensus/release.js'
import type { Follower } from '../follow/index.js'
import type { Logger } from '../logger.js'
import type { RegistryClient } from '../registry/types.js'
import type { RegistryWriter } from '../registry/writer.js'
import type { Store, StoredAnnouncement } from '../store/types.js'
import { attestRelease, type TargetAttestation } from './attest.js'

export interface AttestServiceComponents {
  store: Store
  policy: TrustPolicy
  /** The node's own identity: it signs the VSAs. */
  identity: SigningIdentity
  registry: RegistryClient
  writer: RegistryWriter
  log: Logger
}

export interface AttestServiceInit {
  /** Published image repository per variant; releases with none of these variants are left alone. */
  images: ReadonlyMap<string, string>
  policyUri: string
  /** Hex SHA-256 of the trust policy file. */
  policyDigest: string
  verifierId?: string
  /** How often every release is looked at again. Default 10 minutes. */
  intervalMs?: number
  /** Quiet time after a stored message before a pass starts. Default 30 s. */
  debounceMs?: number
}

export interface AttestService {
  /** Loads what an earlier run left to do; attests it now (every release, when the policy changed since). */
  start: () => Promise<void>
  stop: () => Promise<void>
  /**
   * The publisher as a follower of the stored messages (`attest`): each announcement or claim
   * marks the releases it touches as due, kept in the store before the cursor moves past it,
   * and a pass over them follows after `debounceMs` of quiet.
   */
  readonly follower: Follower
  /** One pass over every release now; resolves when it is done. */
  runOnce: () => Promise<TargetAttestation[]>
  /** Settles when no pass is running or due. */
  idle: () => Promise<void>
}

const DEFAULT_INTERVAL_MS = 10 * 60_000
const DEFAULT_DEBOUNCE_MS = 30_000
/** Releases due, kept across restarts (at most this many; the periodic pass finds the rest). */
const DUE_KEY = 'attest-due'
const MAX_DUE = 10_000
/** The fingerprint of what was last attested for one release. */
const doneKey = (release: string): string => `attest-done:${release}`
/** The policy file the last run attested under: another one may change every verdict. */
const POLICY_KEY = 'attest-policy'

const releaseKey = (repository: string, tag: string): string => `${repository} ${tag}`
const commitKey = (repository: string, commit: string): string => `${repository} ${commit}`

function isKeys (v: unknown): v is string[] {
  return Array.isArray(v) && v.every(k => typeof k === 'string')
}

/**
 * A node's opt-in publisher: for every release a trusted announcer announced, once no
 * target is pending, it attaches the VSAs and claims to the images (`attestRelease`), and
 * again whenever a verdict or the claims behind it change. It follows the message log from
 * its own cursor, and the fingerprint of what it attested is kept in the store, so a restart
 * looks only at what was stored since and pushes nothing twice. A failed release stays due
 * and is tried again on the next pass.
 */
export function createAttestService (components: AttestServiceComponents, init: AttestServiceInit): AttestService {
  const { store, policy, identity, log } = components
  const intervalMs = init.intervalMs ?? DEFAULT_INTERVAL_MS
  const debounceMs = init.debounceMs ?? DEFAULT_DEBOUNCE_MS
  /** Release → fingerprint of the verdicts last attested (read through from the store). */
  const done = new Map<string, string>()
  /** Releases touched since they were last looked at, each with a count of its touches. */
  const due = new Map<string, number>()
  /** Repository and commit → the releases announced at it (the claims of a commit count for each). */
  let ofCommit: Map<string, Set<string>> | undefined
  let timer: NodeJS.Timeout | undefined
  let debounce: NodeJS.Timeout | undefined
  /** Passes run one after another: two never attest one release at once. */
  let queue: Promise<unknown> = Promise.resolve()
  let queued = 0
  let started = false
  let closing = false

  /** Only releases (the one trust rule, as in `readRelease`) with a variant this node publishes. */
  const relevant = (m: StoredAnnouncement): boolean =>
    announcerTrusted(policy, m.keyId) && m.announcement.targets.some(t => init.images.has(t.variant))

  function index (m: StoredAnnouncement, into: Map<string, Set<string>>): string {
    const a = m.announcement
    const ck = commitKey(a.repository, a.commit)
    let set = into.get(ck)
    if (set === undefined) into.set(ck, set = new Set())
    const k = releaseKey(a.repository, a.tag)
    set.add(k)
    return k
  }

  async function releasesOfCommits (): Promise<Map<string, Set<string>>> {
    if (ofCommit !== undefined) return ofCommit
    const built = new Map<string, Set<string>>()
    for (const m of await store.announcements()) if (relevant(m)) index(m, built)
    ofCommit ??= built
    return ofCommit
  }

  async function saveDue (): Promise<void> {
    await store.setState(DUE_KEY, [...due.keys()].slice(-MAX_DUE))
  }

  async function fingerprintDone (k: string): Promise<string | undefined> {
    if (!done.has(k)) {
      const saved = await store.getState(doneKey(k))
      if (typeof saved === 'string') done.set(k, saved)
    }
    return done.get(k)
  }

  /** Attests one release if its verdicts are settled and changed; true when nothing is left to do for it. */
  async function attestOne (k: string, out: TargetAttestation[]): Promise<boolean> {
    const cut = k.indexOf(' ')
    const repository = k.slice(0, cut)
    const tag = k.slice(cut + 1)
    try {
      const release = await readRelease(storeReleaseSource(store, policy, 'the store of this node'), policy, tag, { repository })
      const { chosen, claims } = release
      if (!relevant(chosen)) return true
      const evaluation = evaluateRelease({ ...release, policy })
      // A pending release is due again when the claim that settles it is stored.
      if (evaluation.verdicts.some(v => v.status === 'pending')) return true
      const fingerprint = createHash('sha256').update(JSON.stringify([chosen.id, claims.map(c => c.id).sort(), evaluation.verdicts.map(v => [v.key, v.status, v.consensusDigest])])).digest('hex')
      if (await fingerprintDone(k) === fingerprint) return true
      const results = await attestRelease(components, {
        evaluation,
        claims,
        images: init.images,
        tag,
        identity,
        verifierId: init.verifierId ?? verifierIdOf(identity.keyId),
        policyUri: init.policyUri,
        policyDigest: init.policyDigest
      })
      out.push(...results)
      if (results.some(r => r.error !== undefined)) {
        log.warn({ repository, tag, errors: results.filter(r => r.error !== undefined).map(r => r.error) }, 'some targets were not attested')
        return false
      }
      await store.setState(doneKey(k), fingerprint)
      done.set(k, fingerprint)
      return true
    } catch (err) {
      log.warn({ err, tag }, 'attesting a release failed; retrying on the next pass')
      return false
    }
  }

  /** Looks at the releases due (every release, when `all`). */
  async function pass (all: boolean): Promise<TargetAttestation[]> {
    const out: TargetAttestation[] = []
    const look = new Map(due)
    if (all) for (const set of (await releasesOfCommits()).values()) for (const k of set) if (!look.has(k)) look.set(k, 0)
    for (const [k, touches] of look) {
      if (closing) break
      const settled = await attestOne(k, out)
      // Touched again while it was looked at: due once more.
      if (settled && due.get(k) === (touches === 0 ? undefined : touches)) due.delete(k)
      else if (!settled && !due.has(k)) due.set(k, 1)
    }
    await saveDue()
    return out
  }

  function runPass (all: boolean): Promise<TargetAttestation[]> {
    queued++
    const run = queue.then(async () => await pass(all)).finally(() => { queued-- })
    queue = run.catch(() => undefined)
    return run
  }

  function touch (k: string): void {
    due.set(k, (due.get(k) ?? 0) + 1)
  }
  const runOnce = async (): Promise<TargetAttestation[]> => await runPass(true)

  function schedule (): void {
    if (!started || closing) return
    timer = setTimeout(() => { void runOnce().finally(schedule) }, intervalMs)
    timer.unref()
  }

  function soon (): void {
    if (!started || closing) return
    if (debounce !== undefined) clearTimeout(debounce)
    debounce = setTimeout(() => { debounce = undefined; void runPass(false) }, debounceMs)
    debounce.unref()
  }

  return {
    async start () {
      if (started) return
      started = true
      const saved = await store.getState(DUE_KEY)
      for (const k of isKeys(saved) ? saved : []) touch(k)
      const policyChanged = await store.getState(POLICY_KEY) !== init.policyDigest
      if (due.size > 0 || policyChanged) {
        void runPass(policyChanged).then(async () => {
          if (policyChanged && !closing) await store.setState(POLICY_KEY, init.policyDigest)
        }).catch((err: unknown) => { log.warn({ err }, 'attesting at start failed') })
      }
      schedule()
    },
    async stop () {
      closing = true
      if (timer !== undefined) clearTimeout(timer)
      if (debounce !== undefined) clearTimeout(debounce)
      timer = undefined
      debounce = undefined
      await queue
    },
    follower: {
      name: 'attest',
      kinds: ['announcement', 'claim'],
      async apply (page) {
        const commits = await releasesOfCommits()
        const before = due.size
        let touched = false
        for (const m of page) {
          const keys = m.kind === 'announcement'
            ? (relevant(m) ? [index(m, commits)] : [])
            : commits.get(commitKey(m.claim.target.repository, m.claim.target.commit)) ?? []
          for (const k of keys) { touch(k); touched = true }
        }
        // Kept before the cursor moves past the page: a crash before the pass leaves them due.
        if (due.size !== before) await saveDue()
        if (touched) soon()
      }
    },
    runOnce,
    async idle () {
      for (;;) {
        if (debounce !== undefined) await new Promise(resolve => setTimeout(resolve, 10))
        else if (queued > 0) await queue
        else return
      }
    }
  }
}
