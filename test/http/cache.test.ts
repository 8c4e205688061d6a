import { describe, expect, it } from 'vitest'
import { createResponseCache } from '../../src/node/http/cache.js'
import { prepare } from '../../src/node/http/respond.js'

describe('response cache', () => {
  it('answers for the store version it was computed at, and drops stale entries', () => {
    const cache = createResponseCache()
    const body = prepare(Buffer.from('{"a":1}'))
    cache.set('/x', 7, body)
    expect(cache.immutable('/x')).toBeUndefined()
    // Asking for immutable entries must not evict the versioned one.
    expect(cache.get('/x', 7)).toBe(body)
    expect(cache.get('/x', 8)).toBeUndefined()
    expect(cache.get('/x', 7)).toBeUndefined()
  })

  it('keeps immutable entries across versions', () => {
    const cache = createResponseCache()
    const page = prepare(Buffer.from('[1,2,3]'))
    cache.set('/page', 1, page, true)
    expect(cache.immutable('/page')).toBe(page)
    expect(cache.get('/page', 99)).toBe(page)
  })

  it('stays within its entry and byte bounds, least recently used first', () => {
    const cache = createResponseCache({ maxEntries: 2, maxBytes: 100 })
    cache.set('/a', 1, prepare(Buffer.alloc(10)))
    cache.set('/b', 1, prepare(Buffer.alloc(10)))
    expect(cache.get('/a', 1)).toBeDefined()
    cache.set('/c', 1, prepare(Buffer.alloc(10)))
    expect(cache.get('/b', 1)).toBeUndefined()
    expect(cache.get('/a', 1)).toBeDefined()
    cache.set('/big', 1, prepare(Buffer.alloc(60)))
    expect(cache.get('/big', 1)).toBeUndefined()
  })

  it('expires entries after maxAgeMs', async () => {
    const cache = createResponseCache({ maxAgeMs: 20 })
    cache.set('/x', 1, prepare(Buffer.from('x')))
    expect(cache.get('/x', 1)).toBeDefined()
    await new Promise(resolve => setTimeout(resolve, 40))
    expect(cache.get('/x', 1)).toBeUndefined()
  })
})
