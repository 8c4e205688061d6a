import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

/** The dashboard's static files, read once at start and served from memory. */
export interface DashboardAsset {
  body: Buffer
  contentType: string
}

const ASSETS: Record<string, { file: string, contentType: string }> = {
  '/': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', contentType: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', contentType: 'text/css; charset=utf-8' }
}

/**
 * Where the assets are: next to this module under tsx, or, when running from dist/ (tsc
 * copies no assets), the source folder the package ships alongside.
 */
const CANDIDATES = [
  new URL('./dashboard/', import.meta.url),
  new URL('../../../src/node/http/dashboard/', import.meta.url)
]

/** Reads the dashboard once; no build step: what is in the folder is what is served. */
export async function loadDashboard (dirs: URL[] = CANDIDATES): Promise<Map<string, DashboardAsset>> {
  let lastError: unknown
  for (const dir of dirs) {
    try {
      const out = new Map<string, DashboardAsset>()
      for (const [path, { file, contentType }] of Object.entries(ASSETS)) {
        out.set(path, { body: await readFile(fileURLToPath(new URL(file, dir))), contentType })
      }
      return out
    } catch (err) {
      lastError = err
    }
  }
  throw new Error(`dashboard assets not found (looked in ${dirs.map(d => fileURLToPath(d)).join(', ')})`, { cause: lastError })
}
