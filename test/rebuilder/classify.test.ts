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

  // Error lines as engines print them; the first was seen with the engine's bridge gone.
  const runStep = (error: string): string => `#5 [2/3] RUN make\n#5 ERROR: ${error}\n------\nERROR: failed to solve: ${error}\n`
  it.each([
    ['process "/bin/sh -c make" did not complete successfully: failed to create endpoint bed1yvdiifbju733apoa5g91i on network bridge: adding interface veth149bc7d to bridge docker0 failed: Device does not exist', 'network'],
    ['process "/bin/sh -c make" did not complete successfully: failed to set up container networking: failed to create endpoint x on network bridge', 'network'],
    ['failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error mounting "proc"', 'runtime'],
    ['process "/bin/sh -c make" did not complete successfully: failed to start shim: start failed: containerd-shim-runc-v2: ttrpc: closed: unknown', 'runtime'],
    ['write /var/lib/docker/buildkit/content/ingest/x/data: no space left on device', 'disk'],
    ['process "/bin/sh -c make" did not complete successfully: exit code: 137', 'killed'],
    ['rpc error: code = Unavailable desc = error reading from server: EOF', 'went away']
  ])('puts the machine at fault for %s', (error, words) => {
    const f = classifyBuildLog(runStep(error), 1)
    expect(f.class).toBe('infrastructure-error')
    expect(f.message).toContain(words)
  })

  it('leaves a release\'s own failing step with the release', () => {
    expect(classifyBuildLog(runStep('process "/bin/sh -c make" did not complete successfully: exit code: 2'), 1).class).toBe('build-failed')
    expect(classifyBuildLog(runStep('process "nosuch" did not complete successfully: OCI runtime create failed: runc create failed: unable to start container process: exec: "nosuch": executable file not found in $PATH'), 1).class).toBe('build-failed')
  })

  it('falls back to the solver error without a step', () => {
    const f = classifyBuildLog('ERROR: failed to solve: failed to read dockerfile: open Dockerfile: no such file', 1)
    expect(f.class).toBe('build-failed')
    expect(f.step).toBeUndefined()
    expect(f.message).toContain('failed to read dockerfile')
  })
})
