import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const SUMDB = '/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog'

/**
 * Whether Go and Debian's golang.org/x/mod sources are installed. Under `NEKO_REQUIRE_GO=1`
 * (set by CI) a missing toolchain throws, so the interoperability test fails rather than
 * skips; otherwise it skips with one line on stderr.
 */
export function goAvailable (suite: string): boolean {
  let go: boolean
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' })
    go = true
  } catch {
    go = false
  }
  if (go && existsSync(SUMDB)) return true
  if (process.env.NEKO_REQUIRE_GO === '1') throw new Error(`${suite}: NEKO_REQUIRE_GO=1 but go or ${SUMDB} is missing`)
  process.stderr.write(`[skip] ${suite}: go or golang-golang-x-mod-dev missing; run scripts/setup-host.sh to check against Go's sumdb packages\n`)
  return false
}

/** Builds a Go program in GOPATH mode against Debian's packaged sources (no module proxy is reachable). */
export function goBuild (dir: string, out: string, cacheDir: string): void {
  execFileSync('go', ['build', '-o', out, '.'], {
    cwd: dir,
    env: { ...process.env, GO111MODULE: 'off', GOPATH: '/usr/share/gocode', GOCACHE: cacheDir, GOFLAGS: '' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
}
