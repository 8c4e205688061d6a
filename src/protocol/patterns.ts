import { LIMITS } from './limits.js'

/**
 * The wire rules for the fields that also arrive from outside a message: tags, commits,
 * platforms and digests (docs/protocol.md, section 3). The message schemas use the pattern
 * strings, with the lengths of LIMITS beside them; the HTTP API, the CLI, the source checkout
 * and the rebuilder use WIRE, the same rules as RegExps with the length included, so that a
 * value one of them accepts is one that a message may carry, and the other way round.
 */
/** Git tag names as used for releases: no whitespace, `@`, `#`, `~`, `^`, `:`, `?`, `*`, `[`, `\`. */
export const TAG = '^[A-Za-z0-9_][A-Za-z0-9._/+-]*$'
/** A full git commit id: 40 lowercase hex (SHA-1; claims do not name SHA-256 commits). */
export const COMMIT = '^[0-9a-f]{40}$'
/** `os/arch[/variant]`, lowercase. */
export const PLATFORM = '^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$'
/** An image or recipe digest: `sha256:` and 64 lowercase hex. */
export const DIGEST = '^sha256:[0-9a-f]{64}$'

/** `pattern` (anchored with `^`) that also holds at most `maxLength` characters. */
function bounded (pattern: string, maxLength: number): RegExp {
  return new RegExp(`^(?=[^]{1,${maxLength}}$)${pattern.slice(1)}`)
}

export const WIRE = {
  tag: bounded(TAG, LIMITS.tagLength),
  commit: new RegExp(COMMIT),
  platform: bounded(PLATFORM, LIMITS.platformLength),
  digest: new RegExp(DIGEST)
} as const
