import { parse as parseYaml } from 'yaml'
import { included } from './discover.js'
import type { AuditFileError, Finding } from './types.js'

/** The repository file that suppresses findings, each with a reason. */
export const SUPPRESS_FILE = '.neko-rebuilder-audit.yaml'
const MAX_RULES = 1000
const MAX_REASON = 500

/**
 * `# neko-rebuilder-audit: ignore NR050 <reason>` on the finding's line or the line above;
 * several rules with commas (`ignore NR050,NR010 ...`). The reason is required.
 */
const INLINE = /#\s*neko-rebuilder-audit:\s*ignore\s+(NR\d{3}[a-z0-9-]*(?:\s*,\s*NR\d{3}[a-z0-9-]*)*)(?:\s+(?:--\s*)?(.*))?$/

export interface Suppression {
  rule: string
  /** Path or glob, as `--include` takes them; every file when absent. */
  path?: string
  reason: string
}

export interface SuppressedFinding extends Finding {
  suppressed: { by: 'inline' | 'config', reason: string }
}

/** Whether a rule id or id prefix as a user writes it (`NR050`, `NR050-copy-metadata-implicit`) names rule `id`. */
export const ruleMatches = (given: string, id: string): boolean => id === given || id.startsWith(`${given}-`)

/** Parses the suppression file; entries without a rule or a reason are errors, not silent. */
export function parseSuppressions (text: string): { rules: Suppression[], errors: AuditFileError[] } {
  const errors: AuditFileError[] = []
  const rules: Suppression[] = []
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    return { rules, errors: [{ path: SUPPRESS_FILE, message: `not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`, kind: 'config' }] }
  }
  const list = (doc as { suppress?: unknown } | null)?.suppress
  if (list == null) return { rules, errors }
  if (!Array.isArray(list)) return { rules, errors: [{ path: SUPPRESS_FILE, message: '"suppress" must be a list', kind: 'config' }] }
  list.slice(0, MAX_RULES).forEach((e: unknown, i) => {
    const entry = e as Record<string, unknown> | null
    const rule = entry?.rule
    const reason = entry?.reason
    const path = entry?.path
    if (typeof rule !== 'string' || !/^NR\d{3}[a-z0-9-]*$/.test(rule)) { errors.push({ path: SUPPRESS_FILE, message: `suppress[${i}]: "rule" must be a rule id such as NR050`, kind: 'config' }); return }
    if (typeof reason !== 'string' || reason.trim() === '') { errors.push({ path: SUPPRESS_FILE, message: `suppress[${i}] (${rule}): a "reason" is required`, kind: 'config' }); return }
    if (path != null && typeof path !== 'string') { errors.push({ path: SUPPRESS_FILE, message: `suppress[${i}] (${rule}): "path" must be a string`, kind: 'config' }); return }
    rules.push({ rule, reason: reason.slice(0, MAX_REASON), ...(path != null ? { path } : {}) })
  })
  if (list.length > MAX_RULES) errors.push({ path: SUPPRESS_FILE, message: `more than ${MAX_RULES} entries; the rest are ignored`, kind: 'config' })
  return { rules, errors }
}

/**
 * Splits findings into those that stand and those a comment or the suppression file waives.
 * `lines` gives a file's text by path (already read by the audit).
 */
export function applySuppressions (findings: Finding[], rules: Suppression[], lines: (path: string) => string[] | undefined, errors: AuditFileError[]): { kept: Finding[], suppressed: SuppressedFinding[] } {
  const kept: Finding[] = []
  const suppressed: SuppressedFinding[] = []
  const warned = new Set<string>()
  for (const f of findings) {
    const text = lines(f.path)
    let hit: SuppressedFinding['suppressed'] | undefined
    for (const n of [f.line, f.line - 1]) {
      const m = INLINE.exec(text?.[n - 1] ?? '')
      if (m?.[1] == null || !m[1].split(',').some(r => ruleMatches(r.trim(), f.ruleId))) continue
      const reason = (m[2] ?? '').trim()
      if (reason === '') {
        const key = `${f.path}:${n}`
        if (!warned.has(key)) { warned.add(key); errors.push({ path: f.path, message: `line ${n}: a neko-rebuilder-audit ignore comment needs a reason`, kind: 'config' }) }
        continue
      }
      hit = { by: 'inline', reason: reason.slice(0, MAX_REASON) }
      break
    }
    if (hit == null) {
      const rule = rules.find(r => ruleMatches(r.rule, f.ruleId) && (r.path == null || included(f.path, [r.path])))
      if (rule != null) hit = { by: 'config', reason: rule.reason }
    }
    if (hit != null) suppressed.push({ ...f, suppressed: hit })
    else kept.push(f)
  }
  return { kept, suppressed }
}
