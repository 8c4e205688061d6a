import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { nodeLogger } from '../../src/node/daemon/node-logger.js'
import { createLogger, silentLogger } from '../../src/node/logger.js'
import { peerIdOf } from '../../src/node/p2p/identity.js'
import { generateIdentity } from '../../src/protocol/keys.js'
import { parsePolicy } from '../../src/protocol/policy.js'

/** A destination that keeps each JSON record pino writes. */
function sink (): { stream: Writable, records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { stream, records }
}

describe('logger', () => {
  const saved = process.env.NEKO_LOG_LEVEL
  afterEach(() => {
    if (saved === undefined) delete process.env.NEKO_LOG_LEVEL
    else process.env.NEKO_LOG_LEVEL = saved
  })

  it('gives each component its own child, with the bound fields on every record', () => {
    const { stream, records } = sink()
    const root = createLogger({ level: 'info', format: 'json', destination: stream })
    const a = root.bind({ node: 'node-1', peer: 'aaaaaaaa' })
    const b = root.bind({ node: 'node-2', peer: 'bbbbbbbb' })
    a.forComponent('scheduler').info('one')
    b.forComponent('scheduler').info('two')
    root.forComponent('devnet').info('three')
    a.forComponent('store').debug('below the level')
    expect(records.map(r => [r.component, r.node, r.peer, r.msg])).toEqual([
      ['scheduler', 'node-1', 'aaaaaaaa', 'one'],
      ['scheduler', 'node-2', 'bbbbbbbb', 'two'],
      ['devnet', undefined, undefined, 'three']
    ])
  })

  it('takes its level from NEKO_LOG_LEVEL when made, unless told one; defaultLevel applies when neither says', () => {
    const { stream, records } = sink()
    process.env.NEKO_LOG_LEVEL = 'warn'
    createLogger({ format: 'json', destination: stream }).forComponent('x').info('dropped')
    createLogger({ format: 'json', destination: stream, level: 'info' }).forComponent('x').info('kept: told info')
    delete process.env.NEKO_LOG_LEVEL
    createLogger({ format: 'json', destination: stream, defaultLevel: 'warn' }).forComponent('x').info('dropped: quiet by default')
    createLogger({ format: 'json', destination: stream }).forComponent('x').info('kept: info by default')
    expect(records.map(r => r.msg)).toEqual(['kept: told info', 'kept: info by default'])
  })

  it('a silent logger has no level enabled', () => {
    const log = silentLogger().forComponent('x')
    expect(log.isLevelEnabled('fatal')).toBe(false)
  })

  it('binds a node to its name in the policy and the end of its peer id', () => {
    const me = generateIdentity()
    const stranger = generateIdentity()
    const policy = parsePolicy({ version: 1, builders: [{ name: 'node-7', operator: 'op', publicKey: me.publicKeyPem }], threshold: 1, minOperators: 1, allowedDissent: 0 })
    const { stream, records } = sink()
    const root = createLogger({ level: 'info', format: 'json', destination: stream })
    nodeLogger(root, me, policy).forComponent('daemon').info('listed')
    nodeLogger(root, stranger, policy).forComponent('daemon').info('not listed')
    expect(records[0]).toMatchObject({ node: 'node-7', nodePeer: peerIdOf(me.privateKey).slice(-8), msg: 'listed' })
    expect(records[1]!.node).toBeUndefined()
    expect(records[1]!.nodePeer).toBe(peerIdOf(stranger.privateKey).slice(-8))
  })
})
