import { writeFile } from 'node:fs/promises'
import { basename, resolve } from 'node:path'
import type { Command } from 'commander'
import { InvalidArgumentError } from 'commander'
import { composePolicy, type PolicyKeyEntry } from '../../node/daemon/policy.js'
import { readPublicKey } from '../../node/identity-files.js'
import { EXIT } from '../exit-codes.js'
import { cliLogger } from '../logger.js'

interface PolicyFlags {
  builder?: string[]
  announcer?: string[]
  threshold?: number
  minOperators?: number
  allowedDissent?: number
  out?: string
  force?: boolean
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

function count (value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a whole number')
  return Number(value)
}

/** `[NAME[@OPERATOR]=]PATH`; without a name, the directory's (or file's) name is used. */
export function parseKeySpec (spec: string): { name: string, operator?: string, path: string } {
  const m = /^([^=@/]+)(?:@([^=/]+))?=(.+)$/.exec(spec)
  if (m != null) return { name: m[1] as string, ...(m[2] != null ? { operator: m[2] } : {}), path: m[3] as string }
  const base = basename(resolve(spec)).replace(/\.pem$/, '')
  return { name: base === 'identity' || base === 'public' || base === 'private' ? basename(resolve(spec, '..')) : base, path: spec }
}

async function entries (specs: string[]): Promise<PolicyKeyEntry[]> {
  const out: PolicyKeyEntry[] = []
  for (const spec of specs) {
    const { name, operator, path } = parseKeySpec(spec)
    const key = await readPublicKey(path, { logger: cliLogger() })
    out.push({ name, ...(operator != null ? { operator } : {}), publicKeyPem: key.publicKeyPem })
  }
  return out
}

export function register (program: Command): void {
  program.command('policy')
    .description('Write a trust policy from identity directories (or public.pem files), checked as a node would read it')
    .option('--builder <[name[@operator]=]dir>', 'a trusted builder, repeatable; name and operator default to the directory name', collect)
    .option('--announcer <[name=]dir>', 'a trusted announcer, repeatable', collect)
    .option('--threshold <n>', 'agreeing builders needed (default: a majority)', count)
    .option('--min-operators <n>', 'distinct operators among them (default: the threshold, at most the operators there are)', count)
    .option('--allowed-dissent <n>', 'trusted builders that may disagree (default 0)', count)
    .option('--out <file>', 'write here instead of stdout')
    .option('--force', 'overwrite --out if it exists')
    .action(async (flags: PolicyFlags, cmd: Command) => {
      if ((flags.builder ?? []).length === 0) cmd.error('neko-rebuilder: give at least one --builder', { exitCode: EXIT.USAGE })
      const doc = composePolicy(await entries(flags.builder ?? []), await entries(flags.announcer ?? []), {
        ...(flags.threshold != null ? { threshold: flags.threshold } : {}),
        ...(flags.minOperators != null ? { minOperators: flags.minOperators } : {}),
        ...(flags.allowedDissent != null ? { allowedDissent: flags.allowedDissent } : {})
      })
      const text = JSON.stringify(doc, null, 2) + '\n'
      if (flags.out == null) {
        process.stdout.write(text)
        return
      }
      await writeFile(flags.out, text, { flag: flags.force === true ? 'w' : 'wx', mode: 0o644 })
      process.stderr.write(`wrote ${flags.out}: ${doc.builders instanceof Array ? doc.builders.length : 0} builder(s), ${doc.announcers instanceof Array ? doc.announcers.length : 0} announcer(s), threshold ${String(doc.threshold)}\n`)
    })
}
