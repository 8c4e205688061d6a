import { open, readdir, stat } from 'node:fs/promises'
import { join, matchesGlob } from 'node:path'
import { compareText } from './lines.js'
import type { AuditFileError, FileKind } from './types.js'

/** Files larger than this are reported, not read: build files are small, and a repository is untrusted input. */
export const MAX_FILE_BYTES = 2 * 1024 * 1024
/** Directory entries visited before the walk stops and says so. */
const MAX_ENTRIES = 200_000
const MAX_DEPTH = 32
const SKIP_DIRS = new Set(['.git', 'node_modules', '.hg', '.svn'])

export interface Candidate {
  path: string
  kind: FileKind
}

const SHEBANG = /^#!\s*\S*\/(env\s+(-\S+\s+)*)?(ba|da)?sh\b/

/** The kind a path's name alone says it has; scripts without an extension are decided by their shebang. */
function kindByName (rel: string): FileKind | undefined {
  const name = rel.slice(rel.lastIndexOf('/') + 1)
  // Workflows, and action metadata (composite and Docker actions the workflows use).
  if (/^\.github\/workflows\/[^/]+\.ya?ml$/.test(rel) || /^action\.ya?ml$/.test(name)) return 'workflow'
  if (/^(Dockerfile|Containerfile)(\..+)?\.tmpl$/.test(name) || /\.(Dockerfile|Containerfile)\.tmpl$/.test(name)) return 'template'
  if (/^(Dockerfile|Containerfile)(\.[^.]+)*$/.test(name) || /\.(Dockerfile|dockerfile|Containerfile)$/.test(name)) return 'dockerfile'
  if (/\.(sh|bash)$/.test(name)) return 'script'
  return undefined
}

async function hasShellShebang (abs: string): Promise<boolean> {
  const handle = await open(abs, 'r')
  try {
    const buf = Buffer.alloc(128)
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0)
    return SHEBANG.test(buf.subarray(0, bytesRead).toString('latin1'))
  } finally {
    await handle.close()
  }
}

export function included (rel: string, include: readonly string[] | undefined): boolean {
  if (include == null || include.length === 0) return true
  return include.some(p => {
    const clean = p.replace(/^\.\//, '').replace(/\/$/, '')
    return clean === '' || clean === '.' || rel === clean || rel.startsWith(`${clean}/`) || matchesGlob(rel, clean)
  })
}

/** Walks a repository for Dockerfiles, templates, shell scripts and workflows. */
export async function discover (root: string, include?: readonly string[]): Promise<{ files: Candidate[], errors: AuditFileError[] }> {
  const files: Candidate[] = []
  const errors: AuditFileError[] = []
  let visited = 0
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) { errors.push({ path: dir || '.', message: `deeper than ${MAX_DEPTH} directories; not searched` }); return }
    let entries
    try {
      entries = await readdir(join(root, dir), { withFileTypes: true })
    } catch (err) {
      errors.push({ path: dir || '.', message: `cannot list directory: ${(err as Error).message}` })
      return
    }
    entries.sort((a, b) => compareText(a.name, b.name))
    for (const entry of entries) {
      if (++visited > MAX_ENTRIES) {
        if (visited === MAX_ENTRIES + 1) errors.push({ path: dir || '.', message: `more than ${MAX_ENTRIES} entries; the rest were not searched` })
        return
      }
      const rel = dir === '' ? entry.name : `${dir}/${entry.name}`
      const abs = join(root, rel)
      const byName = kindByName(rel)
      if (entry.isDirectory()) {
        if (SKIP_DIRS.has(entry.name)) continue
        // A directory named like a build file is a mistake worth telling about.
        if (byName != null && included(rel, include)) { errors.push({ path: rel, message: 'is a directory, not a file' }); continue }
        await walk(rel, depth + 1)
        continue
      }
      let isFile = entry.isFile()
      if (entry.isSymbolicLink()) {
        try {
          isFile = (await stat(abs)).isFile()
        } catch (err) {
          if (byName != null && included(rel, include)) errors.push({ path: rel, message: `unreadable: broken symbolic link (${(err as NodeJS.ErrnoException).code ?? 'error'})` })
          continue
        }
      }
      if (!isFile || !included(rel, include)) continue
      if (byName != null) { files.push({ path: rel, kind: byName }); continue }
      if (entry.name.includes('.')) continue
      try {
        if (await hasShellShebang(abs)) files.push({ path: rel, kind: 'script' })
      } catch (err) {
        errors.push({ path: rel, message: `unreadable: ${(err as Error).message}` })
      }
    }
  }
  await walk('', 0)
  return { files, errors }
}
