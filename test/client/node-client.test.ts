import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchDivergencesFromNode, fetchHealthFromNode, fetchJobsFromNode, getFromNode, NodeFetchError } from '../../src/node/client/index.js'
import type { DivergencesResponse, HealthResponse } from '../../src/node/http/api.js'
import { causeRef } from '../../src/protocol/causes.js'
import { LimitError } from '../../src/protocol/errors.js'
import { signDivergenceReport, type DivergenceReport } from '../../src/protocol/divergence-report.js'
import { COMMIT_1, imageResult, makeKeys, target, testPolicy } from '../http/fixtures.js'

const keys = makeKeys()
const policy = testPolicy(keys)

function report (createdAt: string): DivergenceReport {
  return {
    target: target(COMMIT_1, 'base', 'linux/amd64', 'v1'),
    a: { claimId: 'a'.repeat(64), keyId: keys.builders[0]!.keyId, manifestDigest: imageResult('one').manifestDigest },
    b: { claimId: 'b'.repeat(64), keyId: keys.builders[1]!.keyId, manifestDigest: imageResult('two').manifestDigest },
    paths: { total: 1, explained: 1 },
    causes: [{ ...causeRef('machine-id'), count: 1, layers: [1], steps: ['RUN apt-get install -y dbus'], paths: ['etc/machine-id'] }],
    layers: [{ index: 1, step: 'RUN apt-get install -y dbus', causeCounts: { 'machine-id': 1 } }],
    fetched: { entries: 10, bytes: 900 },
    createdAt
  }
}

/** What each path answers: a body (JSON unless a string), or a status alone. */
const answers = new Map<string, { status?: number, body?: unknown }>()

describe('node API client', () => {
  let server: Server
  let url: string

  beforeAll(async () => {
    server = createServer((req, res) => {
      const a = answers.get(new URL(req.url ?? '/', 'http://x').pathname)
      if (a === undefined) { res.writeHead(404).end(); return }
      const body = typeof a.body === 'string' ? a.body : JSON.stringify(a.body)
      res.writeHead(a.status ?? 200, { 'content-type': 'application/json' }).end(body)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  })
  afterAll(async () => { await new Promise(resolve => server.close(resolve)) })

  it('keeps the divergence reports a policy builder signed, drops the rest, and takes the node\'s word for none', async () => {
    const trusted = report('2026-12-01T10:00:00.000Z')
    const forged = { ...report('2026-12-01T11:00:00.000Z') }
    const body: DivergencesResponse = {
      items: [
        { id: 'x', keyId: keys.builders[0]!.keyId, report: trusted, envelope: signDivergenceReport(trusted, keys.builders[0]!) },
        // Signed by a stranger, and claimed by the node to be a builder's: dropped.
        { id: 'y', keyId: keys.builders[1]!.keyId, report: forged, envelope: signDivergenceReport(forged, keys.stranger) },
        { id: 'z', keyId: keys.builders[1]!.keyId, report: forged, envelope: null }
      ]
    }
    answers.set('/api/v1/divergences', { body })
    const got = await fetchDivergencesFromNode(url, policy, 'v1')
    expect(got).toEqual([{ keyId: keys.builders[0]!.keyId, report: trusted }])
    answers.set('/api/v1/divergences', { body: { nothing: true } })
    await expect(fetchDivergencesFromNode(url, policy, 'v1')).rejects.toThrow(/api\/v1\/divergences.*no items array/)
    // A node from before the route: nothing to show, not an error.
    answers.delete('/api/v1/divergences')
    expect(await fetchDivergencesFromNode(url, policy, 'v1')).toEqual([])
  })

  it('reads the jobs view, and refuses an answer that is not one, naming the URL', async () => {
    const view = { queued: [], running: [], recent: [], counts: { queued: 0, running: 0, done: 1, failed: 0, refused: 0, broken: 0 }, host: { state: 'ok' } }
    answers.set('/api/v1/jobs', { body: view })
    expect(await fetchJobsFromNode(url, { recent: 5 })).toEqual(view)
    for (const bad of [{ queued: [] }, null, 'not json']) {
      answers.set('/api/v1/jobs', { body: bad })
      const err = await fetchJobsFromNode(url).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(NodeFetchError)
      expect((err as Error).message).toContain(`${url}api/v1/jobs`)
    }
    answers.delete('/api/v1/jobs')
    await expect(fetchJobsFromNode(url)).rejects.toThrow(/HTTP 404 \(a node older than the jobs view/)
  })

  it('reads /healthz as the route types it, and nothing from a node without it', async () => {
    const health: HealthResponse = { status: 'ok', messages: 3, claims: 2, announcements: 1, catchUp: { behind: 10, perSecond: 2, etaSeconds: 5 } }
    answers.set('/healthz', { body: health })
    expect(await fetchHealthFromNode(url)).toEqual(health)
    answers.delete('/healthz')
    expect(await fetchHealthFromNode(url)).toBeUndefined()
  })

  it('bounds every answer as it streams in, and refuses what is not an http URL', async () => {
    answers.set('/big', { body: 'x'.repeat(10_000) })
    await expect(getFromNode(url, '/big', { accept: 'application/json', timeoutMs: 5_000, maxBytes: 1000 })).rejects.toBeInstanceOf(LimitError)
    await expect(getFromNode('ftp://127.0.0.1/', '/x', { accept: 'application/json', timeoutMs: 1000, maxBytes: 10 })).rejects.toThrow(/--node.*http or https/)
    await expect(getFromNode('http://127.0.0.1:9/', '/x', { accept: 'application/json', timeoutMs: 2000, maxBytes: 10 })).rejects.toThrow(/unreachable/)
  })
})
