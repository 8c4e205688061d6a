import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { RULES } from '../../src/audit/index.js'

describe('docs/audit.md', () => {
  it('documents every rule with its severity', () => {
    const doc = readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8')
    for (const rule of RULES) expect(doc).toMatch(new RegExp(`\\| \`${rule.id}\` \\| ${rule.severity} \\|`))
  })
})
