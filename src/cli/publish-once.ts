import { generateIdentity } from '../protocol/keys.js'
import { NekoError } from '../protocol/errors.js'
import { createP2PNode, TOPICS } from '../node/p2p/index.js'
import { componentLog, type LoggerComponents } from '../node/logger.js'

/** No peer took the message within the time allowed. */
export class NotDeliveredError extends NekoError {
  override name = 'NotDeliveredError'
  override readonly code = 'ERR_NOT_DELIVERED'
}

export interface PublishOnceInit {
  /** Multiaddrs (with `/p2p/<peer id>`) of running nodes. */
  to: string[]
  topic?: string
  timeoutMs?: number
  /** Short gossip heartbeat: the mesh forms within a few beats. */
  heartbeatIntervalMs?: number
}

/**
 * Publishes one message through a short-lived node: dials the given peers (again every 500 ms
 * until one answers or the time is up), waits until one of them subscribes to the topic, publishes, lets the frames flush, and stops. The transport key
 * is fresh each time; the message carries its own signature.
 */
export async function publishOnce (data: Uint8Array, init: PublishOnceInit, components: LoggerComponents = {}): Promise<{ recipients: number, peers: string[] }> {
  const log = componentLog(components.logger, 'announce')
  const topic = init.topic ?? TOPICS.announcements
  const deadline = Date.now() + (init.timeoutMs ?? 15_000)
  const node = await createP2PNode({
    ...components,
    privateKey: generateIdentity().privateKey,
    validate: () => 'ignore',
    onMessage: () => {},
    backfillSource: async ({ cursor }) => ({ items: [], next: cursor })
  }, { listen: [], mdns: false, gossip: { heartbeatIntervalMs: init.heartbeatIntervalMs ?? 200 } })
  await node.start()
  try {
    // A node that is still starting refuses connections: retry until one answers or time is up.
    const dialed: string[] = []
    const warned = new Set<string>()
    for (;;) {
      for (const addr of init.to) {
        try {
          await node.dial(addr)
          dialed.push(addr)
        } catch (err) {
          // A dead port is expected here: its reason, not a stack.
          if (!warned.has(addr)) log.warn({ addr, error: (err as Error).message ?? String(err) }, 'could not dial; trying again until the timeout')
          warned.add(addr)
        }
      }
      if (dialed.length > 0 || Date.now() >= deadline) break
      await new Promise(resolve => setTimeout(resolve, 500))
    }
    if (dialed.length === 0) throw new NotDeliveredError(`could not reach any of ${init.to.join(', ')}`)
    while ((node.stats().topics[topic] ?? 0) === 0) {
      if (Date.now() > deadline) throw new NotDeliveredError(`no peer subscribed to ${topic} within the time allowed`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    // A subscription is known from the peer's stream to us; the message goes out on ours, which
    // may still be opening on a busy machine: wait for the peer in the mesh (a heartbeat or two),
    // or a few seconds at most.
    const meshBy = Math.min(deadline, Date.now() + 3_000)
    while ((node.stats().mesh[topic] ?? 0) === 0 && Date.now() < meshBy) {
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    // Once only: a second publish of the same bytes is a duplicate that gossipsub drops.
    const { recipients } = await node.publish(topic, data)
    if (recipients === 0) throw new NotDeliveredError('no peer received the message')
    // Let the frames leave before the connection closes.
    await new Promise(resolve => setTimeout(resolve, 500))
    return { recipients, peers: node.connectedPeers() }
  } finally {
    await node.stop()
  }
}
