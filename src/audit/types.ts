import type { Recipe } from '../node/rebuilder/index.js'

/** Severity on the scale of the reproducibility analysis: critical breaks every build, low leaves small layer differences. */
export type Severity = 'critical' | 'high' | 'medium' | 'low'

/** Most severe first; formats and `--fail-on` rely on this order. */
export const SEVERITIES: readonly Severity[] = ['critical', 'high', 'medium', 'low']

export type FileKind = 'dockerfile' | 'script' | 'workflow' | 'template'

/** One rule's fixed description, shared by every finding it produces. */
export interface RuleMeta {
  /** Stable id, `NR<3 digits>-<slug>`. */
  id: string
  severity: Severity
  title: string
  /** Why it breaks reproducibility. */
  why: string
  /** How to fix it. */
  fix: string
  /**
   * Order within a severity, higher first (default 0): what ships in the released binary
   * before leftovers a one-line removal fixes.
   */
  impact?: number
  /**
   * For a leftover: the image paths it leaves behind (`/` when they could be anywhere). In a
   * stage that reaches the final image only through `COPY --from`, such a finding matters
   * only when what is copied overlaps these paths.
   */
  leaves?: readonly string[]
}

export interface Finding {
  ruleId: string
  severity: Severity
  title: string
  /** Repository-relative path with `/` separators. */
  path: string
  /** 1-based. */
  line: number
  /** 1-based, when known. */
  column?: number
  /** The offending text, shortened to one line. */
  text: string
  /** What is wrong at this place. */
  message: string
  why: string
  fix: string
  /** The template through which this file was audited, when it was included by one. */
  via?: string
  /** Why no release build is affected (a file no build reads, a stage that does not reach the image); only with `all`. */
  outside?: string
}

export interface AuditedFile {
  path: string
  kind: FileKind
}

export interface AuditFileError {
  path: string
  message: string
  /**
   * `config` for a mistake in how the audit was asked for rather than in an audited file: the
   * suppression file or an ignore comment without a reason, an `--include`/`--exclude` that
   * matches nothing, a recipe the audit cannot follow. Absent for files that could not be audited.
   */
  kind?: 'config'
}

export interface AuditReport {
  /** Absolute path of the audited repository. */
  root: string
  files: AuditedFile[]
  findings: Finding[]
  /** Findings waived by an inline comment or the suppression file, with the reason; not counted. */
  suppressed: Array<Finding & { suppressed: { by: 'inline' | 'config', reason: string } }>
  /**
   * Findings no release build is affected by, each with the reason in `outside`: files the
   * recipe's builds never read, stages the built target does not use, leftovers in stages that
   * reach the image only through `COPY --from` of other paths. Not counted; empty with `all`.
   */
  skipped: Array<Finding & { outside: string }>
  /** Unreadable or malformed files, and configuration errors (`kind: 'config'`): reported, the audit goes on without them. */
  errors: AuditFileError[]
  summary: Record<Severity, number>
  /** Findings of rules left out by `exclude`, counted so that the summary says so (excluded files are not audited at all); present when `exclude` is given. */
  excluded?: number
}

export interface AuditOptions {
  /** Repository-relative paths or glob patterns; when given, only matching files are audited. */
  include?: string[]
  /**
   * Left out of the audit: rule ids or id prefixes (`NR050`), whose findings are not reported,
   * and repository-relative paths or glob patterns as `include` takes them, whose files are not audited.
   */
  exclude?: string[]
  /** Follow `FROM ./dir/ AS name` includes of `Dockerfile.tmpl` files (default true). */
  followTemplates?: boolean
  /** How release builds are made: with it, files none of its builds reads are skipped. */
  recipe?: Recipe
  /** Keep skipped findings in `findings` (marked `outside`, after the others of their severity) rather than in `skipped`. */
  all?: boolean
}

/** Where a rule found something: an offset into the file text, or a line and column. */
export interface Place {
  path: string
  line: number
  column?: number
  text: string
  message: string
  via?: string
}

/** Collects findings; rules call it with their id. */
export type Report = (ruleId: string, place: Place) => void
