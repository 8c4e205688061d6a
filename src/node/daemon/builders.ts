import { decodeCapabilities, type Capabilities } from '../../protocol/capabilities.js'
import { LIMITS } from '../../protocol/limits.js'
import type { TrustPolicy } from '../../protocol/policy.js'
import type { Store } from '../store/types.js'
import type { Logger } from '../logger.js'

/** One node's latest capabilities statement, as served by `/api/v1/builders`. */
export interface BuilderInfo {
  keyId: string
  /** Policy name and operator when the policy trusts this key. */
  name?: string
  operator?: string
  trusted: boolean
  /** This node itself. */
  self: boolean
  capabilities: Capabilities
  /** The signed statement (DSSE envelope JSON), for offline verification. */
  envelopeJson: string
  receivedAt: string
}

export interface BuilderRegistry {
  /** Checks a capabilities message from gossip; on accept, records it. Never throws. */
  receive: (data: Uint8Array) => 'accept' | 'reject' | 'ignore'
  /** Records this node's own statement. */
  setOwn: (keyId: string, caps: Capabilities, envelopeJson: string) => void
  list: () => BuilderInfo[]
  /** Whether a statement of `keyId` is held (without building the list). */
  has: (keyId: string) => boolean
  /** Loads and saves the table in node state, so a restart shows known builders at once. */
  load: () => Promise<void>
  save: () => Promise<void>
}

const STATE_KEY = 'builders'
/** Statements dated further ahead than this are refused: they would pin a stale entry. */
const MAX_CLOCK_SKEW_MS = 5 * 60_000

export function createBuilderRegistry (components: { store: Store, policy: () => TrustPolicy, log: Logger }, init: { maxEntries?: number } = {}): BuilderRegistry {
  const maxEntries = init.maxEntries ?? 1024
  const entries = new Map<string, Omit<BuilderInfo, 'name' | 'operator' | 'trusted'>>()
  let ownKey: string | undefined

  function put (info: Omit<BuilderInfo, 'name' | 'operator' | 'trusted'>): boolean {
    const old = entries.get(info.keyId)
    if (old != null && Date.parse(old.capabilities.issuedAt) >= Date.parse(info.capabilities.issuedAt)) return false
    if (old == null && entries.size >= maxEntries) {
      // Make room by dropping an untrusted stranger, never a policy builder.
      const policy = components.policy()
      const victim = [...entries.keys()].find(k => k !== ownKey && !policy.builderKeys.has(k))
      if (victim == null) return false
      entries.delete(victim)
    }
    entries.set(info.keyId, info)
    return true
  }

  return {
    receive (data) {
      if (data.byteLength > LIMITS.envelopeBytes) return 'reject'
      let decoded
      try {
        decoded = decodeCapabilities(data)
      } catch (err) {
        components.log.debug({ err }, 'capabilities message rejected')
        return 'reject'
      }
      if (Date.parse(decoded.capabilities.issuedAt) > Date.now() + MAX_CLOCK_SKEW_MS) return 'reject'
      if (decoded.keyId === ownKey) return 'ignore'
      const stored = put({
        keyId: decoded.keyId,
        self: false,
        capabilities: decoded.capabilities,
        envelopeJson: Buffer.from(data).toString('utf8'),
        receivedAt: new Date().toISOString()
      })
      return stored ? 'accept' : 'ignore'
    },

    setOwn (keyId, caps, envelopeJson) {
      ownKey = keyId
      entries.delete(keyId)
      put({ keyId, self: true, capabilities: caps, envelopeJson, receivedAt: new Date().toISOString() })
    },

    has (keyId) {
      return entries.has(keyId)
    },

    list () {
      const policy = components.policy()
      return [...entries.values()].map(e => {
        const b = policy.builderById.get(e.keyId)
        return { ...e, trusted: b != null, ...(b != null ? { name: b.name, operator: b.operator } : {}) }
      }).sort((a, b) => Number(b.self) - Number(a.self) || Number(b.trusted) - Number(a.trusted) || (a.keyId < b.keyId ? -1 : 1))
    },

    async load () {
      const saved = await components.store.getState<string[]>(STATE_KEY)
      if (!Array.isArray(saved)) return
      for (const envelopeJson of saved.slice(0, maxEntries)) {
        try {
          const d = decodeCapabilities(envelopeJson)
          if (d.keyId !== ownKey) put({ keyId: d.keyId, self: false, capabilities: d.capabilities, envelopeJson, receivedAt: new Date().toISOString() })
        } catch {
          // A stale or damaged entry is dropped; the peer republishes.
        }
      }
    },

    async save () {
      await components.store.setState(STATE_KEY, [...entries.values()].filter(e => !e.self).map(e => e.envelopeJson))
    }
  }
}
