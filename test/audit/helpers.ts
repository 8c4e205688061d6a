import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AuditReport, Finding } from '../../src/audit/index.js'

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

/** `path:line` of each finding of one rule, by path then line, for readable assertions. */
export function placesOf (report: AuditReport, ruleId: string): string[] {
  return report.findings.filter(f => f.ruleId === ruleId)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.line - b.line))
    .map(f => `${f.path}:${f.line}`)
}

export function find (report: AuditReport, ruleId: string, path: string, line: number): Finding | undefined {
  return report.findings.find(f => f.ruleId === ruleId && f.path === path && f.line === line)
}

/** Temporary repositories written by `repo`; remove them with `removeRepos` after the tests. */
const made: string[] = []

/** A temporary repository holding these files (repository-relative path → text). */
export async function repo (files: Record<string, string>, prefix = 'audit-'): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), prefix))
  made.push(root)
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true })
    await writeFile(join(root, path), text)
  }
  return root
}

export async function removeRepos (): Promise<void> {
  for (const d of made.splice(0)) await rm(d, { recursive: true, force: true })
}
