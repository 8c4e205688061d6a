// A process guarded as `join` is: throws CASE from a microtask, as yamux's stream opening does,
// then says whether it is still alive.
import { StreamStateError } from '@libp2p/interface'
import { createLogger } from '../../src/node/logger.js'
import { surviveClosedStreamWrites } from '../../src/cli/signals.js'

surviveClosedStreamWrites(createLogger({ defaultLevel: 'info' }).forComponent('process'))
const what = process.argv[2]
queueMicrotask(() => {
  if (what === 'stream') throw new StreamStateError('Cannot write to a stream that is closed')
  if (what === 'rejection') void Promise.reject(new StreamStateError('Cannot write to a stream that is closed'))
  if (what === 'other') throw new TypeError('a bug')
})
setTimeout(() => { process.stdout.write('alive\n') }, 200)
