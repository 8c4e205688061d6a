/**
 * Reading another node's log over HTTP for `status --node`: the inclusion evidence of each
 * message (checked here against the policy's witnesses) and the split views it has proven.
 * Every answer is bounded in size and time; the node's word is never taken, only its proofs.
 */
import type { StoredMessage } from '../store/types.js'
import { checkWitnessed, type InclusionEvidence, type WitnessRequirement } from '../../protocol/tlog/witnessed.js'
import type { SplitViewProof } from '../../protocol/tlog/split-view.js'
import { getFromNode, jsonFromNode } from '../client/node-client.js'

const MAX_ANSWER_BYTES = 64 * 1024
const MAX_SPLIT_VIEWS_BYTES = 4 * 1024 * 1024
const MAX_UNRESPONSIVE_BYTES = 1024 * 1024
/** As many as a witness tracks logs. */
const MAX_UNRESPONSIVE = 1024
const TIMEOUT_MS = 10_000
const CONCURRENCY = 8

/** A node's JSON answer at `path`, bounded as it streams in; `undefined` where the node has no such route. */
async function getJson (nodeUrl: string, path: string, maxBytes: number, params?: Record<string, string>): Promise<unknown> {
  const got = await getFromNode(nodeUrl, path, { accept: 'application/json', timeoutMs: TIMEOUT_MS, maxBytes, missingOk: true, ...(params !== undefined ? { params } : {}) })
  return got === undefined ? undefined : jsonFromNode(got)
}

export interface WitnessedFilter<T extends StoredMessage = StoredMessage> {
  kept: T[]
  excluded: Array<{ id: string, keyId: string, reason: string }>
}

/** Keeps the messages whose inclusion the node proves in a checkpoint cosigned by enough policy witnesses. */
export async function filterWitnessed<T extends StoredMessage> (nodeUrl: string, messages: T[], req: WitnessRequirement): Promise<WitnessedFilter<T>> {
  const out: WitnessedFilter<T> = { kept: [], excluded: [] }
  const results = new Array<{ ok: boolean, reason?: string }>(messages.length)
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < messages.length) {
      const i = next++
      const m = messages[i] as T
      let evidence: InclusionEvidence | undefined
      try {
        evidence = await getJson(nodeUrl, '/tlog/inclusion', MAX_ANSWER_BYTES, { id: m.id }) as InclusionEvidence | undefined
      } catch (err) {
        results[i] = { ok: false, reason: `no answer from the log: ${(err as Error).message}` }
        continue
      }
      const r = checkWitnessed(m.kind, m.id, evidence, req)
      results[i] = r.ok ? { ok: true } : { ok: false, reason: r.reason }
    }
  }))
  messages.forEach((m, i) => {
    const r = results[i]
    if (r?.ok === true) out.kept.push(m)
    else out.excluded.push({ id: m.id, keyId: m.keyId, reason: r?.reason ?? 'not checked' })
  })
  return out
}

/** The split-view proofs a node serves (unverified: each names the log key to check it with). */
export async function fetchSplitViews (nodeUrl: string): Promise<Array<SplitViewProof & { logKeyId: string, detectedAt: string }>> {
  const body = await getJson(nodeUrl, '/tlog/split-views', MAX_SPLIT_VIEWS_BYTES) as { items?: unknown } | undefined
  return Array.isArray(body?.items) ? body.items as Array<SplitViewProof & { logKeyId: string, detectedAt: string }> : []
}

/** A log the node reports as not answering proof requests, as far as a reader can tell (the node's word). */
export interface ReportedUnresponsive {
  logKeyId: string
  since: string
  failures: number
  lastError: string
  cosignedSize: number
}

const str = (v: unknown, max: number): string => typeof v === 'string' ? v.slice(0, max).replace(/[^\x20-\x7e]/g, '?') : ''
const num = (v: unknown): number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0

/** The logs a node, as a witness, finds not answering proof requests (`/tlog/unresponsive`). */
export async function fetchUnresponsive (nodeUrl: string): Promise<ReportedUnresponsive[]> {
  const body = await getJson(nodeUrl, '/tlog/unresponsive', MAX_UNRESPONSIVE_BYTES) as { items?: unknown } | undefined
  if (!Array.isArray(body?.items)) return []
  return body.items.slice(0, MAX_UNRESPONSIVE).map((i: Record<string, unknown> | null) => ({
    logKeyId: str(i?.logKeyId, 64),
    since: str(i?.since, 40),
    failures: num(i?.failures),
    lastError: str(i?.lastError, 300),
    cosignedSize: num(i?.cosignedSize)
  }))
}
