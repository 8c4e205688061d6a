/** Reading dpkg's database out of a layer, to tell version drift from other differences. */

export const DPKG_STATUS = 'var/lib/dpkg/status'
export const DPKG_LIST = /^var\/lib\/dpkg\/info\/([^/]+)\.list$/

/** Installed packages in a dpkg status file: `name[:arch]` → version. */
export function parseDpkgStatus (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string): string | undefined => new RegExp(`^${name}: *(.*)$`, 'mi').exec(stanza)?.[1]?.trim()
    const pkg = field('Package')
    const version = field('Version')
    const status = field('Status') ?? 'install ok installed'
    if (pkg == null || version == null || !/\binstalled$/.test(status)) continue
    const arch = field('Architecture')
    out.set(arch != null && arch !== 'all' ? `${pkg}:${arch}` : pkg, version)
  }
  return out
}

export interface PackageChange {
  name: string
  a?: string
  b?: string
}

/** Packages installed in only one status, or at another version, sorted by name. */
export function packageDrift (a: Map<string, string>, b: Map<string, string>): PackageChange[] {
  const names = [...new Set([...a.keys(), ...b.keys()])].sort()
  const out: PackageChange[] = []
  for (const name of names) {
    const va = a.get(name)
    const vb = b.get(name)
    if (va === vb) continue
    out.push({ name, ...(va != null ? { a: va } : {}), ...(vb != null ? { b: vb } : {}) })
  }
  return out
}

export function describeChange (p: PackageChange): string {
  return `${p.a ?? '(absent)'} → ${p.b ?? '(absent)'}`
}

/** The name a package's `.list` file uses: `name` or `name:arch`. */
export function listKey (name: string): string[] {
  const bare = name.split(':')[0] ?? name
  return bare === name ? [name] : [name, bare]
}
