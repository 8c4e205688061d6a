import { describe, expect, it } from 'vitest'
import { classifyBuildLog } from '../../src/node/rebuilder/index.js'

const failingRun = `#4 [1/3] COPY busybox /bin/busybox
#4 DONE 0.0s

#5 [stage-1 2/3] RUN make all
#5 0.210 make: *** No rule to make target 'all'.
#5 ERROR: process "/bin/sh -c make all" did not complete successfully: exit code: 2
------
 > [stage-1 2/3] RUN make all:
------
ERROR: failed to solve: process "/bin/sh -c make all" did not complete successfully: exit code: 2
`

describe('build log classification', () => {
  it('names the failing step', () => {
    const f = classifyBuildLog(failingRun, 1)
    expect(f.class).toBe('build-failed')
    expect(f.step).toBe('RUN make all')
    expect(f.message).toContain('[stage-1 2/3]')
    expect(f.logExcerpt).toContain('failed to solve')
  })

  it('finds the step from headers older than the kept log', () => {
    const tail = '#9 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1\n'
    const f = classifyBuildLog(tail, 1, new Map([[9, '[3/3] RUN false']]))
    expect(f.step).toBe('RUN false')
  })

  it('puts the machine at fault for disk, engine and builder problems', () => {
    expect(classifyBuildLog(`${failingRun}\nERROR: failed to solve: write /var/lib/x: no space left on device`, 1).class).toBe('infrastructure-error')
    expect(classifyBuildLog('ERROR: Cannot connect to the Docker daemon at unix:///nonexistent. Is the docker daemon running?', 1).class).toBe('infrastructure-error')
    expect(classifyBuildLog('ERROR: no builder "x" found', 1).class).toBe('infrastructure-error')
  })

  it('falls back to the solver error without a step', () => {
    const f = classifyBuildLog('ERROR: failed to solve: failed to read dockerfile: open Dockerfile: no such file', 1)
    expect(f.class).toBe('build-failed')
    expect(f.step).toBeUndefined()
    expect(f.message).toContain('failed to read dockerfile')
  })
})
