import { describe, expect, it } from 'vitest'
import { overlaps, parseStages, reach, runFiles } from '../../src/audit/stages.js'
import type { StageGraph } from '../../src/audit/stages.js'

/** Links stages by name within one file, as a plain Dockerfile build does. */
function graphOf (text: string, args: Record<string, string> = {}): StageGraph {
  const stages = parseStages({ file: 'Dockerfile', text, args: new Map(Object.entries(args)), contextDir: '' })
  const resolve = (i: number, ref: string): number | undefined => {
    const j = stages.findIndex((s, k) => k < i && s.name === ref.toLowerCase())
    if (j >= 0) return j
    if (/^\d+$/.test(ref)) return Number(ref)
    return ref.includes('$') ? -1 : undefined
  }
  return { stages, base: stages.map((s, i) => resolve(i, s.from)), reads: stages.map((s, i) => s.reads.map(r => ({ stage: resolve(i, r.ref), paths: r.paths }))) }
}

describe('stages of a Dockerfile', () => {
  it('follows FROM chains, COPY --from by name and index, and RUN --mount from', () => {
    const g = graphOf([
      'FROM golang:1.25 AS build',
      'FROM build AS build2',
      'FROM debian AS tools',
      'FROM debian AS unused',
      'FROM alpine',
      'FROM scratch AS final',
      'COPY --from=build2 /out/app /app',
      'COPY --from=4 /etc/ssl/certs/ /etc/ssl/certs/',
      'RUN --mount=type=bind,from=tools,source=/usr/bin/jq,target=/jq ["/jq", "--version"]'
    ].join('\n'))
    const r = reach(g, 5)
    expect(r.get(5)).toBe('all')
    expect([...(r.get(1) as Set<string>)]).toEqual(['/out/app'])
    // The base of a copied-from stage gives what its child gives.
    expect([...(r.get(0) as Set<string>)]).toEqual(['/out/app'])
    expect([...(r.get(4) as Set<string>)]).toEqual(['/etc/ssl/certs'])
    expect([...(r.get(2) as Set<string>)]).toEqual(['/usr/bin/jq'])
    expect(r.has(3)).toBe(false)
  })

  it('a reference a build argument leaves unknown makes every stage count in full', () => {
    const g = graphOf('FROM debian AS a\nFROM debian AS b\nFROM scratch\nCOPY --from=${PICK} /x /x\n')
    const r = reach(g, 2)
    expect([r.get(0), r.get(1), r.get(2)]).toEqual(['all', 'all', 'all'])
    // With the argument known, only the named stage is built.
    const known = reach(graphOf('FROM debian AS a\nFROM debian AS b\nFROM scratch\nCOPY --from=${PICK} /x /x\n', { PICK: 'b' }), 2)
    expect(known.has(0)).toBe(false)
    expect([...(known.get(1) as Set<string>)]).toEqual(['/x'])
  })

  it('overlaps compares paths and the directory above a glob', () => {
    expect(overlaps(['/usr/lib/*.so'], ['/usr/lib/x86_64-linux-gnu'])).toBe(true)
    expect(overlaps(['/usr/lib/*.so'], ['/var/log'])).toBe(false)
    expect(overlaps(['/'], ['/var/log'])).toBe(true)
    expect(overlaps(['/var'], ['/var/cache/fontconfig'])).toBe(true)
    expect(overlaps(['/var/logs'], ['/var/log'])).toBe(false)
  })

  it('finds the repository files a RUN runs through what the stage copied, in JSON form too', () => {
    const [stage] = parseStages({
      file: 'app/Dockerfile',
      text: 'FROM debian\nWORKDIR /app\nCOPY ["scripts/", "./scripts/"]\nCOPY run.sh /usr/local/bin/\nRUN ["./scripts/setup.sh", "--fast"]\nRUN run.sh && /usr/local/bin/run.sh\n',
      args: new Map(),
      contextDir: 'app'
    })
    expect(stage).toBeDefined()
    if (stage == null) return
    const files = runFiles(stage, [])
    expect([...files]).toEqual(expect.arrayContaining(['app/run.sh', 'app/scripts/setup.sh']))
    expect(files.has('app/scripts')).toBe(false)
    // A directory copied to a path holding a file of its own name (Neko's widevine-installer/widevine-installer).
    const [neko] = parseStages({ file: 'runtime/Dockerfile', text: 'FROM debian\nCOPY widevine-installer/ /widevine/\nRUN /widevine/widevine-installer;\n', args: new Map(), contextDir: 'runtime' })
    expect(neko != null && runFiles(neko, []).has('runtime/widevine-installer/widevine-installer')).toBe(true)
  })
})
