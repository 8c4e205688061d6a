import { targetKey } from '../../protocol/target.js'
import type { TestResult } from '../../protocol/test-result.js'
import { BoundedTable, statementIdOf, type PrefixIndex } from './bounded-table.js'
import { checkKey, cursorKey, SEP, type StoreContext, type Sublevel } from './context.js'
import { STORE_LIMITS } from './limits.js'
import type { StoredTestResult, TestResultFilter, TestResultStanding, TestResultStore, WaitingTestResults } from './types.js'

/** A test result's id: hex sha256 of its envelope JSON as stored and gossiped. */
export const testResultIdOf = statementIdOf

/** What `tre` holds per result: the result and its place in save order. */
export interface TestResultEntry extends Omit<StoredTestResult, 'id'> {
  seq: number
}

const releaseKey = (repository: string, commit: string): string => repository + SEP + commit
const signerKey = (e: TestResultEntry): string => targetKey(e.testResult.target) + SEP + e.keyId

/** The indexes readers ask by besides the target: a release (repository and commit), the image tested, the signer. */
interface TestResultIndexes {
  byRelease: PrefixIndex<TestResultEntry>
  bySubject: PrefixIndex<TestResultEntry>
  bySigner: PrefixIndex<TestResultEntry>
}

/**
 * The sublevels of smoke test results: `tre` (id → entry), `trq` (seq → id, save order),
 * `trt` (targetKey NUL seq → id), `tru` (targetKey NUL keyId → id: one per signer and
 * target), `trr` (repository NUL commit NUL seq → id), `trd` (manifest digest NUL seq → id),
 * `trk` (keyId NUL seq → id); in `meta`, `test-results:seq` and `test-results:count`.
 */
export function testResultsTable (ctx: StoreContext, meta: Sublevel): { table: BoundedTable<TestResultEntry>, indexes: TestResultIndexes } {
  const indexes: TestResultIndexes = {
    byRelease: { level: ctx.sublevel('trr'), prefix: e => releaseKey(e.testResult.target.repository, e.testResult.target.commit) },
    bySubject: { level: ctx.sublevel('trd'), prefix: e => e.testResult.manifestDigest },
    bySigner: { level: ctx.sublevel('trk'), prefix: e => e.keyId }
  }
  const table = new BoundedTable<TestResultEntry>(ctx, {
    name: 'tre',
    entries: ctx.sublevel('tre'),
    bySeq: ctx.sublevel('trq'),
    byGroup: { level: ctx.sublevel('trt'), prefix: e => targetKey(e.testResult.target) },
    byUnique: { level: ctx.sublevel('tru'), key: signerKey },
    indexes: Object.values(indexes),
    meta,
    counters: { seq: 'test-results:seq', count: 'test-results:count' },
    isEntry: e => typeof e.keyId === 'string' && typeof e.envelopeJson === 'string' && typeof e.testResult?.target === 'object' && typeof e.testResult.manifestDigest === 'string',
    limits: () => ({ perGroup: STORE_LIMITS.maxTestResultsPerTarget, all: STORE_LIMITS.maxTestResults })
  })
  return { table, indexes }
}

/** What `trw` holds per waiting outcome: the unsigned result and its place in hold order. */
export interface WaitingEntry {
  testResult: TestResult
  seq: number
}

/** A waiting outcome's id: the hash of its JSON, so the same outcome held twice is kept once. */
export const waitingIdOf = (testResult: TestResult): string => statementIdOf(JSON.stringify(testResult))

/**
 * The sublevels of this node's own outcomes waiting for their target's verdict: `trw` (id →
 * entry), `trs` (seq → id, hold order), `trg` (targetKey NUL seq → id), `tro` (seq → id: each
 * outcome its own, none replaces another); in `meta`, `test-results:waiting-seq` and
 * `test-results:waiting-count`.
 */
export function waitingTable (ctx: StoreContext, meta: Sublevel): BoundedTable<WaitingEntry> {
  const max = STORE_LIMITS.maxWaitingTestResults
  return new BoundedTable<WaitingEntry>(ctx, {
    name: 'trw',
    entries: ctx.sublevel('trw'),
    bySeq: ctx.sublevel('trs'),
    byGroup: { level: ctx.sublevel('trg'), prefix: e => targetKey(e.testResult.target) },
    byUnique: { level: ctx.sublevel('tro'), key: e => cursorKey(e.seq) },
    meta,
    counters: { seq: 'test-results:waiting-seq', count: 'test-results:waiting-count' },
    isEntry: e => typeof e.testResult?.target === 'object' && typeof e.testResult.manifestDigest === 'string',
    limits: () => ({ perGroup: max, all: max })
  })
}

class WaitingTable implements WaitingTestResults {
  constructor (private readonly ctx: StoreContext, readonly table: BoundedTable<WaitingEntry>) {}

  async hold (testResult: TestResult): Promise<void> {
    this.ctx.assertOpen()
    checkKey('test result repository', testResult?.target?.repository)
    await this.table.save(waitingIdOf(testResult), seq => ({ testResult, seq }))
  }

  async of (key: string): Promise<Array<{ id: string, testResult: TestResult }>> {
    this.ctx.assertOpen()
    const found = await this.table.list({ index: this.table.spec.byGroup, prefix: key }, () => true, STORE_LIMITS.maxWaitingTestResults)
    return found.reverse().map(({ id, entry }) => ({ id, testResult: entry.testResult }))
  }

  async targets (): Promise<Set<string>> {
    this.ctx.assertOpen()
    const found = await this.table.list(undefined, () => true, STORE_LIMITS.maxWaitingTestResults)
    return new Set(found.map(({ entry }) => targetKey(entry.testResult.target)))
  }

  async release (ids: readonly string[]): Promise<void> {
    this.ctx.assertOpen()
    await this.table.remove(ids)
  }
}

/**
 * Smoke test results this node signed or received: one per signer and target (the newer
 * replaces the older), indexed by target, release, image and signer, at most
 * `maxTestResultsPerTarget` per target and `maxTestResults` in all, the oldest going first.
 */
export class TestResultTable implements TestResultStore {
  readonly table: BoundedTable<TestResultEntry>
  readonly waiting: WaitingTable
  private readonly indexes: TestResultIndexes

  constructor (private readonly ctx: StoreContext, meta: Sublevel) {
    ({ table: this.table, indexes: this.indexes } = testResultsTable(ctx, meta))
    this.waiting = new WaitingTable(ctx, waitingTable(ctx, meta))
  }

  async open (): Promise<void> {
    await this.table.open()
    await this.waiting.table.open()
  }

  async standing (id: string, testResult: TestResult, keyId: string): Promise<TestResultStanding> {
    this.ctx.assertOpen()
    const key = targetKey(testResult.target)
    const ownId = await this.table.idOf(key + SEP + keyId)
    const own = ownId != null ? await this.table.entry(ownId) : undefined
    return {
      stored: await this.table.has(id),
      ...(own != null ? { signerFinishedOn: own.testResult.finishedOn } : {}),
      forTarget: (await this.table.groupIds(key)).length
    }
  }

  async save (envelopeJson: string, testResult: TestResult, keyId: string): Promise<StoredTestResult> {
    this.ctx.assertOpen()
    checkKey('test result keyId', keyId)
    checkKey('test result repository', testResult?.target?.repository)
    checkKey('test result commit', testResult.target.commit)
    checkKey('test result manifestDigest', testResult.manifestDigest)
    const id = testResultIdOf(envelopeJson)
    await this.table.save(id, seq => ({ keyId, envelopeJson, testResult, seq }))
    return { id, keyId, envelopeJson, testResult }
  }

  async list (filter: TestResultFilter = {}, limit: number = STORE_LIMITS.maxTestResults): Promise<StoredTestResult[]> {
    this.ctx.assertOpen()
    const max = Math.max(0, Math.min(limit, STORE_LIMITS.maxTestResults))
    // From the narrowest index the filter names; the rest of it is checked per entry.
    const { repository, commit, key, manifestDigest, keyId } = filter
    const from = key !== undefined
      ? { index: this.table.spec.byGroup, prefix: key }
      : repository !== undefined && commit !== undefined
        ? { index: this.indexes.byRelease, prefix: releaseKey(repository, commit) }
        : manifestDigest !== undefined
          ? { index: this.indexes.bySubject, prefix: manifestDigest }
          : keyId !== undefined ? { index: this.indexes.bySigner, prefix: keyId } : undefined
    const found = await this.table.list(from, ({ keyId: k, testResult: t }) =>
      (repository === undefined || t.target.repository === repository) &&
      (commit === undefined || t.target.commit === commit) &&
      (key === undefined || targetKey(t.target) === key) &&
      (manifestDigest === undefined || t.manifestDigest === manifestDigest) &&
      (keyId === undefined || k === keyId), max)
    return found.map(({ id, entry: e }) => ({ id, keyId: e.keyId, envelopeJson: e.envelopeJson, testResult: e.testResult }))
  }
}
