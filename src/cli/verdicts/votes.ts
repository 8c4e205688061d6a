/**
 * The one notation for votes, in `status` and `verify`: `2 agree · 3 of 4 answered · need 2`.
 * Both counts of builders are written out, so a verdict resting on some of the policy's
 * builders never reads as one that rests on all of them.
 */
export interface VoteCounts {
  /** Trusted votes for the leading digest, as counted (one per engine). */
  agreeing: number
  /** Trusted votes for the leading digest not counted because they came from a counted vote's engine. */
  sameEngine?: number
  /** Trusted builders that answered (vote, failure or equivocation). */
  answered: number
  /** Trusted builders of the policy that have not answered. */
  outstanding: number
  threshold: number
}

export function votesText (v: VoteCounts): string {
  const same = v.sameEngine !== undefined && v.sameEngine > 0 ? ` (+${v.sameEngine} same engine)` : ''
  return `${v.agreeing} agree${same} · ${v.answered} of ${v.answered + v.outstanding} answered · need ${v.threshold}`
}

/** A build log excerpt's lines, with control characters made visible (it came from the network). */
function cleanLines (excerpt: string): string[] {
  return excerpt.replace(/\r\n?/g, '\n').split('\n').map(l => l.trimEnd()).filter(l => l !== '')
    // eslint-disable-next-line no-control-regex
    .map(l => l.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?'))
}

/** BuildKit's context box after a failure: dashes, ` > [stage] STEP:`, `Dockerfile:N` and the numbered Dockerfile listing. */
const CONTEXT_BOX = /^(-{6,}|\s*> \[.*\]:?.*|Dockerfile(\.\S+)?:\d+|\s*(>>>\s*)?\d+\s*\|.*)$/

/**
 * The lines of a signed build log excerpt that say what failed (at most `lines`): the
 * failing step's own lines up to its `#N ERROR:` line, then BuildKit's closing `ERROR:`
 * line. Its context box (the step's output again and the Dockerfile listing) repeats what
 * the step said, so without a step error the box is left out and the `ERROR` lines, else the
 * last lines, remain.
 */
export function failureLines (excerpt: string, lines = 8): string[] {
  const all = cleanLines(excerpt)
  let err = -1
  all.forEach((l, i) => { if (/^#\d+ ERROR: /.test(l)) err = i })
  const closing = all.slice(err + 1).filter(l => /^ERROR: /.test(l)).slice(-1)
  if (err >= 0) {
    const step = (/^#(\d+) /.exec(all[err] as string) as RegExpExecArray)[1] as string
    const own = all.slice(0, err + 1).filter(l => l.startsWith(`#${step} `))
    return [...own.slice(-(lines - closing.length)), ...closing]
  }
  const outside = all.filter(l => !CONTEXT_BOX.test(l))
  const errors = outside.filter(l => /\berror\b/i.test(l))
  return (errors.length > 0 ? errors : outside).slice(-lines)
}
