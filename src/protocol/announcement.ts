import { ajv, check } from './ajv.js'
import { ValidationError } from './errors.js'
import { LIMITS } from './limits.js'
import * as S from './schema-parts.js'
import type { Statement } from './statement.js'
import { ANNOUNCEMENT_PREDICATE, STATEMENT_TYPE, type Announcement, type Target } from './types.js'

/** Subject name of an announcement: `<repository>@<tag>`. */
export function announcementSubjectName (a: Pick<Announcement, 'repository' | 'tag'>): string {
  return `${a.repository}@${a.tag}`
}

/** The targets an announcement names: one per variant and platform entry, of its repository and commit, under its tag. */
export function announcementTargets (a: Pick<Announcement, 'repository' | 'commit' | 'tag'> & { targets: ReadonlyArray<{ variant: string, platform: string }> }): Target[] {
  return a.targets.map(t => ({ repository: a.repository, commit: a.commit, variant: t.variant, platform: t.platform, tag: a.tag }))
}

export function announcementToStatement (a: Announcement): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: announcementSubjectName(a), digest: { gitCommit: a.commit } }],
    predicateType: ANNOUNCEMENT_PREDICATE,
    predicate: {
      repository: a.repository,
      tag: a.tag,
      commit: a.commit,
      recipe: { name: a.recipe.name, digest: a.recipe.digest },
      targets: a.targets.map(t => ({ variant: t.variant, platform: t.platform })),
      announcedAt: a.announcedAt
    }
  }
}

const validate = ajv.compile<{ subject: Array<{ name: string, digest: { gitCommit: string } }>, predicate: Announcement }>(S.statementWith(S.single(S.str(LIMITS.repositoryLength + LIMITS.tagLength + 1), S.gitCommitDigest), {
  type: 'object',
  properties: {
    repository: S.repository,
    tag: S.tag,
    commit: S.commit,
    recipe: S.recipe,
    targets: {
      type: 'array',
      minItems: 1,
      maxItems: LIMITS.targetsPerAnnouncement,
      items: {
        type: 'object',
        properties: { variant: S.variant, platform: S.platform },
        required: ['variant', 'platform'],
        additionalProperties: false
      }
    },
    announcedAt: S.time
  },
  required: ['repository', 'tag', 'commit', 'recipe', 'targets', 'announcedAt'],
  additionalProperties: false
}))

/** Validate an announcement Statement (its `_type` and predicateType already checked) and return the Announcement. */
export function statementToAnnouncement (statement: unknown): Announcement {
  const s = check(validate, statement)
  const p = s.predicate
  const subject = s.subject[0] as { name: string, digest: { gitCommit: string } }
  if (subject.name !== announcementSubjectName(p)) {
    throw new ValidationError('subject[0].name', `must be ${JSON.stringify(announcementSubjectName(p))} (predicate repository@tag)`)
  }
  if (subject.digest.gitCommit !== p.commit) throw new ValidationError('subject[0].digest.gitCommit', 'must equal predicate.commit')
  const seen = new Set<string>()
  p.targets.forEach((t, i) => {
    const k = `${t.variant}@${t.platform}`
    if (seen.has(k)) throw new ValidationError(`predicate.targets[${i}]`, `duplicate target ${k}`)
    seen.add(k)
  })
  return {
    repository: p.repository,
    tag: p.tag,
    commit: p.commit,
    recipe: { name: p.recipe.name, digest: p.recipe.digest },
    targets: p.targets.map(t => ({ variant: t.variant, platform: t.platform })),
    announcedAt: p.announcedAt
  }
}

/** Validate an Announcement before signing, with the same rules a receiver applies. */
export function checkAnnouncement (a: Announcement): void {
  statementToAnnouncement(JSON.parse(JSON.stringify(announcementToStatement(a))))
}
