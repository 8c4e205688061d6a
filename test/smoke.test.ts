import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

describe('cli', () => {
  it('prints its version from package.json', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', '--version'], { encoding: 'utf8' })
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })
})
