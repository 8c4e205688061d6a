import { signCapabilities, type Capabilities } from '../../protocol/capabilities.js'
import type { SigningIdentity } from '../../protocol/keys.js'
import { hostArch, toolInfo } from '../../tool.js'
import type { Logger } from '../logger.js'
import { TOPICS, type P2PNode, type TopicHandler } from '../p2p/index.js'
import type { Capabilities as EngineCapabilities } from '../rebuilder/index.js'
import type { BuilderRegistry } from './builders.js'
import type { Service } from './services.js'
import type { DaemonRebuilder } from './types.js'

export interface NodeCapabilitiesComponents {
  identity: SigningIdentity
  builders: BuilderRegistry
  rebuilder?: DaemonRebuilder
  p2p: Pick<P2PNode, 'publish'>
  log: Logger
}

export interface NodeCapabilities {
  /** Probes the build engine and clears what a killed build left behind; before p2p starts. */
  probe: Service
  /**
   * Publishes the node's statement once, at start: it changes only then. Nothing is published
   * again on a timer; a peer that meets this node later fetches it (statements exchange).
   */
  publisher: Service
  /** Peers' statements, kept in the builder table. */
  topic: TopicHandler<undefined>
  own: () => Capabilities | undefined
  engine: () => EngineCapabilities | undefined
}

/** What this node can build, as a signed statement on the capabilities topic, and its peers' statements. */
export function createNodeCapabilities (components: NodeCapabilitiesComponents): NodeCapabilities {
  const { identity, builders, rebuilder, log } = components
  let own: Capabilities | undefined
  let engine: EngineCapabilities | undefined

  async function publish (): Promise<void> {
    if (own == null) return
    own = { ...own, issuedAt: new Date().toISOString() }
    const envelopeJson = JSON.stringify(signCapabilities(own, identity))
    builders.setOwn(identity.keyId, own, envelopeJson)
    try {
      await components.p2p.publish(TOPICS.capabilities, Buffer.from(envelopeJson, 'utf8'))
    } catch (err) {
      log.debug({ err }, 'publishing capabilities failed')
    }
  }

  async function probe (): Promise<Capabilities> {
    const tool = toolInfo()
    const observer: Capabilities = { arch: hostArch(), platforms: [], nvidia: false, builds: false, tool, issuedAt: new Date().toISOString() }
    if (rebuilder == null) return observer
    try {
      engine = await rebuilder.capabilities()
    } catch (err) {
      log.error({ err }, 'the build engine is not ready: this node runs as an observer (it builds nothing)')
      return observer
    }
    const env = engine.environment
    return {
      arch: env.arch,
      platforms: engine.platforms,
      nvidia: engine.nvidia,
      builds: true,
      // The capabilities statement carries the engine's version, not its id (claims do).
      engine: { name: env.engine.name, version: env.engine.version, ...(env.engine.apiVersion != null ? { apiVersion: env.engine.apiVersion } : {}) },
      buildx: env.buildx,
      buildkit: env.buildkit,
      tool,
      issuedAt: new Date().toISOString()
    }
  }

  return {
    probe: {
      name: 'engine probe',
      async start () {
        own = await probe()
        if (rebuilder?.sweep != null && own.builds) {
          // Never a reason not to start: what is left stays for the next sweep.
          const swept = await rebuilder.sweep().catch((err: unknown) => { log.warn({ err }, 'could not clear what an earlier run left behind'); return { workspaces: 0, locks: 0 } })
          if (swept.workspaces + swept.locks > 0) log.info(swept, 'removed what an earlier run killed mid-build left behind')
        }
      },
      stop () {}
    },
    publisher: {
      name: 'capabilities publisher',
      start: publish,
      stop () {}
    },
    topic: {
      validate (data) {
        const outcome = builders.receive(data)
        return outcome === 'accept' ? { outcome, value: undefined } : { outcome }
      },
      deliver () {}
    },
    own: () => own,
    engine: () => engine
  }
}
