import { LimitError, ValidationError } from '../../protocol/errors.js'
import { checkKey, type StoreContext, type Sublevel } from './context.js'
import { STORE_LIMITS } from './limits.js'

/** Small named values the node's parts keep across restarts (`sta` sublevel: key → JSON), each bounded. */
export class StateTable {
  readonly level: Sublevel

  constructor (private readonly ctx: StoreContext) {
    this.level = ctx.sublevel('sta')
  }

  async get<T = unknown> (key: string): Promise<T | undefined> {
    this.ctx.assertOpen()
    checkKey('state key', key)
    return this.ctx.parse<T>('sta', key, await this.level.get(key))
  }

  async set (key: string, value: unknown): Promise<void> {
    this.ctx.assertOpen()
    checkKey('state key', key)
    const text = JSON.stringify(value)
    if (text === undefined) throw new ValidationError(`state ${key}`, 'must be JSON-serializable')
    const bytes = Buffer.byteLength(text)
    if (bytes > STORE_LIMITS.maxStateBytes) throw new LimitError(`state ${key}`, STORE_LIMITS.maxStateBytes, bytes)
    await this.ctx.write(async () => {
      await this.ctx.db.batch([{ type: 'put', sublevel: this.level, key, value: text }], { sync: true })
    })
  }
}
