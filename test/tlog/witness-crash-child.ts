/**
 * A C2SP tlog-witness over HTTP and nothing else, for test/tlog/http-witness-crash.test.ts,
 * which kills it with SIGKILL while add-checkpoint requests are in flight. Prints its URL.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createHttpWitness, createWitness, witnessedLogKeys } from '../../src/node/tlog/index.js'
import { serveAddCheckpoint } from '../../src/node/http/witness-route.js'
import { identityFromPrivatePem } from '../../src/protocol/keys.js'

const [dir = '', pem = '', vkeys = '[]'] = process.argv.slice(2)
const witness = createWitness({ identity: identityFromPrivatePem(Buffer.from(pem, 'base64').toString()), publish: async () => {}, consistencyProof: async () => [] }, { path: join(dir, 'witness') })
await witness.start()
const unlimited = { perMinute: 1e9, burst: 1e9 }
const http = createHttpWitness({ witness, trustedKeys: witnessedLogKeys(new Map(), JSON.parse(vkeys) as string[]) }, { perClient: unlimited, perOrigin: unlimited })
const server = createServer((req, res) => { void serveAddCheckpoint(req, res, http) })
server.listen(0, '127.0.0.1', () => { process.stdout.write(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}\n`) })
