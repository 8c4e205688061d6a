import { isMap, isScalar } from 'yaml'
import type { Node } from 'yaml'
import { DIGEST_PINNED, expand, placeAt } from '../context.js'
import type { DockerfileContext, RuleFamily, ShellUnit, WorkflowContext } from '../context.js'
import { commandName } from '../shell.js'
import { isDockerBuild } from './buildkit.js'
import type { Report } from '../types.js'

export const BASE_IMAGE_UNPINNED = 'NR001-base-image-unpinned'

/** `docker run`/`docker create` options that take a value as the next word. */
const RUN_VALUE_FLAGS = new Set([
  '-a', '--attach', '--add-host', '--cap-add', '--cap-drop', '--cgroup-parent', '--cidfile', '--cpus', '--cpu-shares', '-c',
  '--device', '--dns', '-e', '--env', '--env-file', '--entrypoint', '--expose', '--gpus', '-h', '--hostname', '--ip',
  '--ipc', '-l', '--label', '--label-file', '--log-driver', '--log-opt', '-m', '--memory', '--mount', '--name',
  '--network', '--net', '--pid', '--platform', '-p', '--publish', '--pull', '--restart', '--runtime', '--security-opt',
  '--shm-size', '--stop-signal', '--stop-timeout', '--tmpfs', '-u', '--user', '--ulimit', '--userns', '--uts', '-v',
  '--volume', '--volumes-from', '-w', '--workdir', '--health-cmd', '--health-interval', '--health-retries', '--group-add'
])

/** Whether an image reference needs no digest: `scratch`, or a stage defined earlier. */
function exempt (image: string, stages: ReadonlySet<string>): boolean {
  const lower = image.toLowerCase()
  return lower === 'scratch' || stages.has(lower)
}

function checkDockerfile (ctx: DockerfileContext, report: Report): void {
  // `# syntax=docker/dockerfile:1.7` pulls the frontend that parses the file: an image like any other.
  for (const d of ctx.dockerfile.getDirectives()) {
    if (d.getName().toLowerCase() !== 'syntax' || DIGEST_PINNED.test(d.getValue())) continue
    const r = d.getValueRange()
    report(BASE_IMAGE_UNPINNED, placeAt(ctx, ctx.lines.lineStart(r.start.line + 1) + r.start.character, d.getValue(), `the Dockerfile frontend ${d.getValue()} is pulled by a mutable tag, not pinned by digest`))
  }
  const seen = new Set<string>(ctx.stages)
  for (const from of ctx.dockerfile.getFROMs()) {
    const raw = from.getImage()
    const range = from.getImageRange()
    const stage = from.getBuildStage()
    if (raw == null || range == null) continue
    const image = expand(raw, ctx.globals)
    // A template's relative FROM is an include, audited through the included file.
    if (ctx.template && /^\.{0,2}\//.test(image)) {
      if (stage != null) seen.add(stage.toLowerCase())
      continue
    }
    if (!exempt(image, seen) && !DIGEST_PINNED.test(image)) {
      const offset = ctx.lines.lineStart(range.start.line + 1) + range.start.character
      const resolved = image !== raw ? ` (resolves to ${image})` : ''
      const message = image.includes('$')
        ? `base image ${raw} depends on a build argument with no default, so it cannot be shown to be pinned`
        : `base image ${raw}${resolved} is a mutable tag, not pinned by digest`
      report(BASE_IMAGE_UNPINNED, placeAt(ctx, offset, raw, message))
    }
    if (stage != null) seen.add(stage.toLowerCase())
  }
}

/** Images a build script runs as build tools (`docker run golang:1.24 ...`) are inputs of the build too. */
function checkShell (unit: ShellUnit, report: Report): void {
  // Images the same script builds (`docker build -t dev:src`) are its own output, not inputs.
  const built = new Set<string>()
  for (const cmd of unit.commands) {
    if (!isDockerBuild(cmd)) continue
    cmd.words.forEach((w, k) => {
      if (w.text === '-t' || w.text === '--tag') built.add(cmd.words[k + 1]?.text ?? '')
      else if (w.text.startsWith('--tag=')) built.add(w.text.slice(6))
    })
  }
  for (const cmd of unit.commands) {
    if (commandName(cmd) !== 'docker') continue
    let k = 1
    if (cmd.words[k]?.text === 'container') k++
    const sub = cmd.words[k]?.text
    if (sub !== 'run' && sub !== 'create') continue
    for (k++; k < cmd.words.length; k++) {
      const w = cmd.words[k]?.text ?? ''
      if (w.startsWith('-')) {
        if (RUN_VALUE_FLAGS.has(w)) k++
        continue
      }
      break
    }
    const image = cmd.words[k]
    if (image == null || image.text.includes('$') || DIGEST_PINNED.test(image.text) || built.has(image.text)) continue
    report(BASE_IMAGE_UNPINNED, placeAt(unit, image.start, image.text, `the build runs image ${image.text}, a mutable tag, not pinned by digest`))
  }
}

/**
 * A workflow job's `container:` is the system its steps, the build included, run in; its
 * `services:` run beside it (a registry the build pushes to, say). Both are pulled by the
 * reference written there. An expression (`${{ ... }}`) cannot be judged and is left alone.
 */
function checkWorkflow (ctx: WorkflowContext, report: Report): void {
  const root = ctx.document.contents
  const jobs = isMap(root) ? root.get('jobs', true) : undefined
  if (!isMap(jobs)) return
  const check = (node: unknown, what: string): void => {
    const ref = isMap(node) ? node.get('image', true) : node
    if (!isScalar(ref) || typeof ref.value !== 'string') return
    const image = ref.value
    if (image === '' || image.includes('${{') || DIGEST_PINNED.test(image)) return
    report(BASE_IMAGE_UNPINNED, placeAt(ctx, (ref as Node).range?.[0] ?? 0, image, `${what} runs in image ${image}, a mutable tag, not pinned by digest`))
  }
  for (const pair of jobs.items) {
    const job = pair.value
    if (!isMap(job)) continue
    const name = isScalar(pair.key) ? String(pair.key.value) : '?'
    check(job.get('container', true), `job ${name}`)
    const services = job.get('services', true)
    if (!isMap(services)) continue
    for (const service of services.items) check(service.value, `service ${isScalar(service.key) ? String(service.key.value) : '?'} of job ${name}`)
  }
}

export const baseImages: RuleFamily = {
  rules: [{
    id: BASE_IMAGE_UNPINNED,
    severity: 'critical',
    title: 'Base image not pinned by digest',
    why: 'A tag such as debian:bookworm-slim is moved to new images over time, so two builds of the same source can start from different base layers; nothing else can make the result identical.',
    fix: 'Pin every base, build-tool and CI job or service image by digest, e.g. FROM debian:bookworm-slim@sha256:<digest>, and update the digest deliberately (Renovate or Dependabot can do it).'
  }],
  dockerfile: checkDockerfile,
  shell: checkShell,
  workflow: checkWorkflow
}
