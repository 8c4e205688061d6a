import { loadRecipe } from '../node/rebuilder/index.js'
import { UsageError } from './errors.js'

/** A repeatable option's values, in order (commander's collector). */
export function collect (value: string, previous: string[]): string[] {
  return [...previous, value]
}

/** `--image VARIANT=REPOSITORY` entries as a map. */
export function parseImages (entries: string[]): Map<string, string> {
  const out = new Map<string, string>()
  for (const e of entries) {
    const eq = e.indexOf('=')
    if (eq <= 0 || eq === e.length - 1) throw new UsageError('--image', `expected VARIANT=REPOSITORY (e.g. base=ghcr.io/m1k1o/neko/base), got ${JSON.stringify(e)}`)
    out.set(e.slice(0, eq), e.slice(eq + 1))
  }
  return out
}

/** Variant → published repository: the recipe's images, overridden by --image. */
export async function imagesFor (recipeName: string, overrides: Map<string, string>): Promise<Map<string, string>> {
  const images = new Map<string, string>()
  try {
    for (const v of (await loadRecipe(recipeName)).variants) if (v.image !== undefined) images.set(v.name, v.image)
  } catch {
    // A recipe this install does not know: only --image names published images.
  }
  for (const [k, v] of overrides) images.set(k, v)
  return images
}
