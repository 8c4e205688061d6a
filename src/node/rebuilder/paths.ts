import { lstat, realpath } from 'node:fs/promises'
import { dirname, join, sep } from 'node:path'

function inside (root: string, path: string): boolean {
  return path === root || path.startsWith(root + sep)
}

/**
 * Whether `rel` (a recipe path) resolves inside the checkout once symlinks are followed. The
 * checkout is untrusted: a committed symlink must not make us read or write host files.
 * For a path that does not exist yet, its nearest existing ancestor is checked.
 */
export async function resolvesInside (root: string, rel: string): Promise<boolean> {
  const realRoot = await realpath(root)
  let probe = join(root, rel)
  for (;;) {
    try {
      return inside(realRoot, await realpath(probe))
    } catch {
      // A dangling symlink is refused; a missing path is judged by its parent.
      if (await lstat(probe).then(() => true, () => false)) return false
      const up = dirname(probe)
      if (up === probe) return false
      probe = up
    }
  }
}
