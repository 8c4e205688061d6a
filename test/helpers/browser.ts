import { existsSync } from 'node:fs'

export const CHROMIUM = process.env.NEKO_CHROMIUM ?? '/usr/bin/chromium'

/** Chromium missing: skip with one notice, unless NEKO_REQUIRE_BROWSER=1 (CI), where it fails. */
export function browserAvailable (label: string): boolean {
  if (existsSync(CHROMIUM)) return true
  if (process.env.NEKO_REQUIRE_BROWSER === '1') throw new Error(`${label}: NEKO_REQUIRE_BROWSER=1 but ${CHROMIUM} is missing`)
  process.stderr.write(`[skip] ${label}: ${CHROMIUM} missing; run scripts/setup-host.sh to test in a real browser\n`)
  return false
}
