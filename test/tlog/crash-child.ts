/**
 * Appends to a store and its transparency log as fast as it can, printing each checkpoint
 * size, until killed. test/tlog/crash.test.ts kills it with SIGKILL mid-write.
 */
import { join } from 'node:path'
import { createStore } from '../../src/node/store/index.js'
import { createTransparencyLog } from '../../src/node/tlog/index.js'
import { identityFromPrivatePem } from '../../src/protocol/keys.js'
import { putMessages } from './messages.js'

const [dir, pem] = [process.argv[2] ?? '', Buffer.from(process.argv[3] ?? '', 'base64').toString()]
const store = await createStore({}, { path: join(dir, 'store') })
const tlog = createTransparencyLog({ store, identity: identityFromPrivatePem(pem) }, { path: join(dir, 'tlog'), checkpointIntervalMs: 1 })
await tlog.start()
tlog.onCheckpoint(note => { process.stdout.write(`checkpoint ${note.split('\n')[1] ?? ''}\n`) })
for (let i = 0; ; i += 7) {
  await putMessages(store, i, i + 7)
  await tlog.sync()
}
