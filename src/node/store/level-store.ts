import { Level } from 'level'
import { componentLog, type LoggerComponents } from '../logger.js'
import { StoreContext } from './context.js'
import { isLockError, StoreLockedError, StoreOpenError } from './errors.js'
import { JobTable } from './jobs.js'
import { STORE_LIMITS } from './limits.js'
import { MessageLog, messageLevels } from './messages.js'
import { migrate } from './migrations.js'
import { ReportTable } from './reports.js'
import { StateTable } from './state.js'
import { TestResultTable } from './test-results.js'
import type { Store, StoreStats } from './types.js'

export interface StoreInit {
  /** Directory of the LevelDB database; created when missing. */
  path: string
  /** Most claims one query returns (`STORE_LIMITS.maxClaimsPerQuery` by default). */
  maxClaimsPerQuery?: number
}

export type StoreComponents = LoggerComponents

/**
 * Opens (or creates) the node's level store: one database, and over its sublevels the message
 * log (messages.ts), jobs, state, divergence reports and smoke test results. Writes of all of
 * them go through one queue (context.ts), so counters are allocated atomically; an older
 * layout is migrated first.
 */
export async function createStore (components: StoreComponents, init: StoreInit): Promise<Store> {
  const db = new Level<string, string>(init.path, { keyEncoding: 'utf8', valueEncoding: 'utf8' })
  try {
    await db.open()
  } catch (err) {
    if (isLockError(err)) throw new StoreLockedError(init.path)
    throw new StoreOpenError(init.path, (err as { cause?: unknown }).cause ?? err)
  }
  const ctx = new StoreContext(db, componentLog(components.logger, 'store'))
  const meta = ctx.sublevel('meta')
  const maxClaims = Math.max(1, Math.min(init.maxClaimsPerQuery ?? STORE_LIMITS.maxClaimsPerQuery, STORE_LIMITS.maxClaimsPerQuery))
  const messageLevel = messageLevels(ctx, meta)
  const messages = new MessageLog(ctx, messageLevel, maxClaims)
  const jobs = new JobTable(ctx)
  const state = new StateTable(ctx)
  const reports = new ReportTable(ctx, meta)
  const testResults = new TestResultTable(ctx, meta)
  await migrate(ctx, messageLevel, { reports: reports.table, testResults: testResults.table, waiting: testResults.waiting.table }, state.level)
  await messages.open()
  await reports.open()
  await testResults.open()

  return {
    putMessage: async (message, envelopeJson) => await messages.put(message, envelopeJson),
    hasMessage: async (id) => await messages.has(id),
    getMessage: async (id) => await messages.get(id),
    messagesSince: async (cursor, limit, filter) => await messages.since(cursor, limit, filter),
    lastCursor: () => messages.cursor(),
    claimsForTarget: async (targetKey) => await messages.claimsForTarget(targetKey),
    claimsForCommit: async (repository, commit, keys) => await messages.claimsForCommit(repository, commit, keys),
    announcements: async (filter) => await messages.announcements(filter),
    targets: async () => await messages.targets(),
    putJob: async (job) => { await jobs.put(job) },
    getJob: async (id) => await jobs.get(id),
    listJobs: async (jobState) => await jobs.list(jobState),
    getState: async <T = unknown>(key: string) => await state.get<T>(key),
    setState: async (key, value) => { await state.set(key, value) },
    async stats (): Promise<StoreStats> {
      ctx.assertOpen()
      const { counts } = messages
      return {
        messages: counts.announcement + counts.claim,
        announcements: counts.announcement,
        claims: counts.claim,
        jobsByState: await jobs.countByState(),
        damaged: ctx.damagedKeys.size
      }
    },
    reports,
    testResults,
    close: async () => { await ctx.close() }
  }
}
