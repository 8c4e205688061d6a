import { isMap, isScalar, isSeq } from 'yaml'
import type { Node, YAMLMap } from 'yaml'
import { DIGEST_PINNED, HEX40, placeAt } from '../context.js'
import type { RuleFamily, WorkflowContext } from '../context.js'
import type { Report } from '../types.js'
import { envKeys, stepLists } from '../workflow.js'
import { BUILD_CACHE_SHARED, REWRITE_TIMESTAMP_MISSING, SOURCE_DATE_EPOCH_MISSING } from './buildkit.js'

export const ACTION_UNPINNED = 'NR043-action-unpinned'

function scalarText (node: unknown): string | undefined {
  return isScalar(node) && node.value != null ? String(node.value) : undefined
}

function offsetOf (node: Node | null | undefined): number {
  return node?.range?.[0] ?? 0
}

/** A `uses:` reference pinned to one immutable thing: a local action, a 40-hex commit, or an image digest. */
function pinned (ref: string): boolean {
  if (ref.startsWith('./')) return true
  if (ref.startsWith('docker://')) return DIGEST_PINNED.test(ref)
  const at = ref.lastIndexOf('@')
  return at > 0 && HEX40.test(ref.slice(at + 1))
}

function checkUses (ctx: WorkflowContext, node: unknown, report: Report): void {
  const ref = scalarText(node)
  if (ref == null || pinned(ref)) return
  const at = ref.lastIndexOf('@')
  const message = at < 0 ? `${ref} is used without any version` : `${ref} names the tag or branch ${ref.slice(at + 1)}, which can be moved to other code`
  report(ACTION_UNPINNED, placeAt(ctx, offsetOf(node as Node), ref, message))
}

/** docker/build-push-action steps are image builds too: they need SOURCE_DATE_EPOCH, rewrite-timestamp and no shared cache. */
function checkBuildStep (ctx: WorkflowContext, step: YAMLMap, env: ReadonlySet<string>, report: Report): void {
  const usesNode = step.get('uses', true)
  const uses = scalarText(usesNode) ?? ''
  if (!uses.startsWith('docker/build-push-action@')) return
  const withNode = step.get('with', true)
  const withMap = isMap(withNode) ? withNode : undefined
  const value = (key: string): string => scalarText(withMap?.get(key, true)) ?? (isSeq(withMap?.get(key, true)) ? JSON.stringify(withMap?.toJSON()[key]) : '')
  const at = offsetOf(usesNode as Node)
  const stepEnv = new Set([...env, ...envKeys(step)])
  if (!stepEnv.has('SOURCE_DATE_EPOCH') && !value('build-args').includes('SOURCE_DATE_EPOCH')) {
    report(SOURCE_DATE_EPOCH_MISSING, placeAt(ctx, at, uses, 'the image is built without SOURCE_DATE_EPOCH in env or build-args'))
  }
  if (!value('outputs').includes('rewrite-timestamp=true')) {
    report(REWRITE_TIMESTAMP_MISSING, placeAt(ctx, at, uses, 'the build exports without rewrite-timestamp=true (set outputs:)'))
  }
  const cacheNode = withMap?.get('cache-from', true)
  const cache = value('cache-from')
  if (cache !== '') {
    report(BUILD_CACHE_SHARED, placeAt(ctx, offsetOf(cacheNode as Node), `cache-from: ${cache}`, `the build restores layers from a cache (${cache}) written by earlier runs`))
  }
}

function check (ctx: WorkflowContext, report: Report): void {
  for (const { job, steps, env } of stepLists(ctx.document.contents)) {
    // A job may call a reusable workflow: owner/repo/.github/workflows/x.yml@ref
    if (job?.has('uses') === true) checkUses(ctx, job.get('uses', true), report)
    for (const step of steps) {
      if (!step.has('uses')) continue
      checkUses(ctx, step.get('uses', true), report)
      checkBuildStep(ctx, step, env, report)
    }
  }
  // A Docker container action runs its image: docker://image must be pinned like any step's.
  const runs = isMap(ctx.document.contents) ? ctx.document.contents.get('runs', true) : undefined
  if (isMap(runs) && runs.get('using') === 'docker') {
    const image = runs.get('image', true)
    if (scalarText(image)?.startsWith('docker://') === true) checkUses(ctx, image, report)
  }
}

export const workflows: RuleFamily = {
  rules: [{
    id: ACTION_UNPINNED,
    severity: 'medium',
    title: 'CI action not pinned by commit',
    why: 'A tag such as actions/checkout@v4 can be moved to other code at any time, so the release pipeline that builds the image can change without any change in the repository.',
    fix: 'Pin each action to a full commit hash with the version in a comment: uses: actions/checkout@<40-hex commit> # v4.1.7 (Dependabot keeps these up to date).'
  }],
  workflow: check
}
