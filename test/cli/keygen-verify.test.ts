import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../src/cli/exit-codes.js'
import { serializeBundle } from '../../src/protocol/bundle.js'
import type { Envelope } from '../../src/protocol/dsse.js'
import type { SigningIdentity } from '../../src/protocol/keys.js'
import { signAnnouncement, signClaim, targetKey } from '../../src/protocol/messages.js'
import { announcement, digestOf, failureClaim, fixedIdentity, makePolicy, successClaim, target } from '../protocol/fixtures.js'

interface Run { code: number, stdout: string, stderr: string }

function cli (...args: string[]): Promise<Run> {
  return new Promise(resolve => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: process.cwd(), env: { ...process.env, NEKO_LOG_LEVEL: 'silent' } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'neko-cli-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

describe('neko-rebuilder keygen', () => {
  it('writes a 0600 private key, prints the key id and refuses to overwrite', async () => {
    const out = join(dir, 'id')
    const first = await cli('keygen', '--out', out)
    expect(first.code).toBe(EXIT.OK)
    const keyId = /key id:\s+([0-9a-f]{64})/.exec(first.stdout)?.[1]
    expect(keyId).toBeDefined()
    expect((await stat(join(out, 'private.pem'))).mode & 0o777).toBe(0o600)
    const before = await readFile(join(out, 'private.pem'), 'utf8')
    const second = await cli('keygen', '--out', out)
    expect(second.code).toBe(EXIT.ERROR)
    expect(second.stderr).toMatch(/private\.pem already exists; refusing to overwrite/)
    expect(await readFile(join(out, 'private.pem'), 'utf8')).toBe(before)
  })

  it('--json prints the key id and files', async () => {
    const r = await cli('keygen', '--out', join(dir, 'json-id'), '--json')
    expect(r.code).toBe(EXIT.OK)
    const j = JSON.parse(r.stdout) as { keyId: string, privateKeyFile: string, publicKeyPem: string }
    expect(j.keyId).toMatch(/^[0-9a-f]{64}$/)
    expect(j.privateKeyFile).toBe(join(dir, 'json-id', 'private.pem'))
    expect(j.publicKeyPem).toContain('BEGIN PUBLIC KEY')
  })
})

describe('neko-rebuilder verify', () => {
  const D1 = digestOf('d1')
  const { builders, announcer, json } = makePolicy(3, { threshold: 2 })
  const [b0, b1, b2] = builders as [SigningIdentity, SigningIdentity, SigningIdentity]
  const amd64Only = announcement({ targets: [{ variant: 'base', platform: 'linux/amd64' }] })
  let policyFile: string

  beforeAll(async () => {
    policyFile = join(dir, 'trust.json')
    await writeFile(policyFile, JSON.stringify(json, null, 2))
  })

  async function bundle (name: string, envs: Envelope[], extraLines: string[] = []): Promise<string> {
    const file = join(dir, name)
    await writeFile(file, serializeBundle(envs) + extraLines.map(l => l + '\n').join(''))
    return file
  }

  it('exit 0 and a table when every target is reproducible', async () => {
    const file = await bundle('ok.jsonl', [signAnnouncement(amd64Only, announcer), signClaim(successClaim(D1), b0), signClaim(successClaim(D1), b1)])
    const r = await cli('verify', file, '--policy', policyFile)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(EXIT.OK)
    // The same table as `status`, under the release it judges.
    expect(r.stdout).toMatch(/^VARIANT\s+PLATFORM\s+VERDICT\s+VOTES\s+CONSENSUS DIGEST\s+PUBLISHED$/m)
    expect(r.stdout).toMatch(/^https:\/\/github\.com\/m1k1o\/neko v3\.0\.0$/m)
    expect(r.stdout).toMatch(/^overall: reproducible$/m)
    // Two of the policy's three builders answered: the notation says so, never "everyone".
    expect(r.stdout).toMatch(/base\s+linux\/amd64\s+reproducible\s+2 agree · 2 of 3 answered · need 2\s+sha256:d1d1d1d1d1d1/)
  })

  it('reports an invalid line with its number, skips it and never counts it', async () => {
    const forged = signClaim(successClaim(D1), b2)
    forged.payload = Buffer.from(JSON.stringify({ forged: true })).toString('base64')
    const file = await bundle('bad-line.jsonl', [signClaim(successClaim(D1), b0), forged, signClaim(successClaim(D1), b1)], ['not json', JSON.stringify(signAnnouncement(amd64Only, announcer))])
    const r = await cli('verify', file, '--policy', policyFile)
    expect(r.code).toBe(EXIT.OK)
    expect(r.stderr).toContain(`${file}:2: skipped: SignatureError`)
    expect(r.stderr).toContain(`${file}:4: skipped: ValidationError`)
    expect(r.stdout).toMatch(/reproducible\s+2 agree · 2 of 3 answered · need 2/)
  })

  it('exit 4 when a target is pending; --json prints one object per target', async () => {
    const file = await bundle('pending.jsonl', [signAnnouncement(announcement(), announcer), signClaim(successClaim(D1), b0), signClaim(successClaim(D1), b1)])
    const r = await cli('verify', file, '--policy', policyFile, '--json')
    expect(r.code).toBe(EXIT.PENDING)
    const verdicts = r.stdout.trim().split('\n').map(l => JSON.parse(l) as { target: { platform: string }, status: string, consensusDigest?: string })
    expect(verdicts.map(v => [v.target.platform, v.status])).toEqual([['linux/amd64', 'reproducible'], ['linux/arm64', 'pending']])
    expect(verdicts[0]?.consensusDigest).toBe(D1)
  })

  it('exit 1 when builders disagree, with the dissent listed', async () => {
    const file = await bundle('split.jsonl', [signClaim(successClaim(D1), b0), signClaim(successClaim(digestOf('d2')), b1), signClaim(failureClaim(), b2), signAnnouncement(amd64Only, announcer)])
    const r = await cli('verify', file, '--policy', policyFile)
    expect(r.code).toBe(EXIT.NOT_REPRODUCIBLE)
    expect(r.stdout).toContain('unreproducible')
    // One vote each: neither digest leads, so both are listed as what they are.
    expect(r.stdout).toMatch(/unreproducible\s+split 2 ways · 3 of 3 answered · need 2/)
    for (const b of [b0, b1]) expect(r.stdout).toMatch(new RegExp(`digest\\s+${b.keyId.slice(0, 12)} \\(op\\d\\): sha256:d[12]`))
    expect(r.stdout).not.toContain('dissent')
    expect(r.stdout).toMatch(new RegExp(`failed\\s+build-failed × 1: ${b2.keyId.slice(0, 12)} \\(op\\d\\)`))
  })

  it('exit 1 when the consensus differs from the published digest', async () => {
    const file = await bundle('published.jsonl', [signClaim(successClaim(D1), b0), signClaim(successClaim(D1), b1), signAnnouncement(amd64Only, announcer)])
    const published = join(dir, 'published.json')
    await writeFile(published, JSON.stringify({ [targetKey(target())]: digestOf('ab') }))
    const r = await cli('verify', file, '--policy', policyFile, '--published', published)
    expect(r.code).toBe(EXIT.NOT_REPRODUCIBLE)
    expect(r.stdout).toMatch(/reproducible\s+2 agree · 2 of 3 answered · need 2\s+sha256:d1d1d1d1d1d1…\s+MISMATCH sha256:abababababab/)
    await writeFile(published, JSON.stringify([{ ...target(), digest: D1 }]))
    const same = await cli('verify', file, '--policy', policyFile, '--published', published)
    expect(same.code).toBe(EXIT.OK)
    expect(same.stdout).toMatch(/\smatches$/m)
  })

  it('counts votes from one engine once, as a node does', async () => {
    const onEngine = (digest: string): ReturnType<typeof successClaim> => {
      const c = successClaim(digest)
      return { ...c, environment: { ...c.environment, engine: { ...c.environment.engine, id: 'ENGINE:ONE' } } }
    }
    const file = await bundle('same-engine.jsonl', [signAnnouncement(amd64Only, announcer), signClaim(onEngine(D1), b0), signClaim(onEngine(D1), b1)])
    const r = await cli('verify', file, '--policy', policyFile)
    expect(r.code).toBe(EXIT.PENDING)
    expect(r.stdout).toMatch(/pending\s+1 agree \(\+1 same engine\) · 2 of 3 answered · need 2/)
    expect(r.stdout).toMatch(/same engine \(counted once\) [0-9a-f]{12} \(op\d\) with [0-9a-f]{12}: engine ENGINE:ONE/)
  })

  it('shows untrusted claims but does not count them', async () => {
    const strangers = [fixedIdentity(90), fixedIdentity(91)]
    const file = await bundle('untrusted.jsonl', [signClaim(successClaim(D1), b0), ...strangers.map(s => signClaim(successClaim(D1), s)), signAnnouncement(amd64Only, announcer)])
    const r = await cli('verify', file, '--policy', policyFile)
    expect(r.code).toBe(EXIT.PENDING)
    expect(r.stdout).toMatch(/pending\s+1 agree · 1 of 3 answered · need 2/)
    expect(r.stdout).toMatch(new RegExp(`untrusted 2 claims: (${strangers.map(s => s.keyId.slice(0, 12)).join('|')}) sha256:d1d1d1d1d1d1…, (${strangers.map(s => s.keyId.slice(0, 12)).join('|')}) sha256:d1d1d1d1d1d1…$`, 'm'))
    expect(new Set(strangers.map(s => s.keyId.slice(0, 12)).filter(k => r.stdout.includes(k))).size).toBe(2)
  })

  it('exit 2 without a trusted announcement, unless --claims-only asks for the claims alone', async () => {
    const claims = [signClaim(successClaim(D1), b0), signClaim(successClaim(D1), b1)]
    // A feed that withholds the real announcement and serves an impostor's "this tag is that commit".
    const impostor = signAnnouncement(amd64Only, fixedIdentity(92))
    const file = await bundle('impostor.jsonl', [impostor, ...claims])
    const r = await cli('verify', file, '--policy', policyFile)
    expect(r.code).toBe(EXIT.ERROR)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain('NoTrustedAnnouncementError: no announcement of any release in')
    expect(r.stderr).toContain('1 by other keys ignored')
    const bare = await cli('verify', await bundle('claims.jsonl', claims), '--policy', policyFile)
    expect(bare.code).toBe(EXIT.ERROR)
    expect(bare.stderr).toContain('it holds none')
    const alone = await cli('verify', await bundle('claims.jsonl', claims), '--policy', policyFile, '--claims-only')
    expect(alone.code).toBe(EXIT.OK)
    expect(alone.stdout).toMatch(/reproducible\s+2 agree · 2 of 3 answered · need 2/)
  })

  it('exit 2 naming the field for a bad policy or a missing file', async () => {
    const file = await bundle('any.jsonl', [signClaim(successClaim(D1), b0)])
    const bad = join(dir, 'bad-policy.json')
    await writeFile(bad, JSON.stringify({ ...json, threshold: 7 }))
    const r = await cli('verify', file, '--policy', bad)
    expect(r.code).toBe(EXIT.ERROR)
    expect(r.stderr).toContain('PolicyError: policy threshold: 7 is more than the 3 builders')
    const missing = await cli('verify', join(dir, 'nope.jsonl'), '--policy', policyFile)
    expect(missing.code).toBe(EXIT.ERROR)
    expect(missing.stderr).toContain('nope.jsonl')
  })
})
