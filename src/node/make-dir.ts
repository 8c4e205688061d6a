import { mkdir, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

/**
 * `mkdir -p`, one level at a time. Node's `mkdir(..., { recursive: true })` loops forever
 * where the kernel answers ENOENT for a directory whose parent exists (under /proc, /sys):
 * here such a refusal is an error naming the directory.
 */
export async function makeDir (dir: string, mode = 0o777): Promise<void> {
  const path = resolve(dir)
  const missing: string[] = []
  let probe = path
  for (;;) {
    const st = await stat(probe).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (st != null) {
      if (!st.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', syscall: 'mkdir', path: probe })
      break
    }
    missing.unshift(probe)
    const up = dirname(probe)
    if (up === probe) break
    probe = up
  }
  for (const d of missing) {
    try {
      await mkdir(d, { mode })
    } catch (err) {
      // Made meanwhile by someone else: fine.
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && (await stat(d)).isDirectory()) continue
      throw err
    }
  }
}
