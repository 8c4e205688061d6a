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

/** The last `lines` lines of a build log excerpt from a claim, with control characters made visible (it came from the network). */
export function excerptLines (excerpt: string, lines = 8): string[] {
  return excerpt.replace(/\r\n?/g, '\n').split('\n').map(l => l.trimEnd()).filter(l => l !== '').slice(-lines)
    // eslint-disable-next-line no-control-regex
    .map(l => l.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?'))
}
