import { commandText, placeAt } from '../context.js'
import type { RuleFamily, ShellUnit } from '../context.js'
import { commandName, parseShell } from '../shell.js'
import type { SimpleCommand, Word } from '../shell.js'
import type { Report } from '../types.js'
import { removes } from './leftovers.js'

/**
 * Caches, logs and state that language package managers and build tools leave in the image:
 * they hold fetch times, HTTP date headers and random names, so the layer differs on every
 * build. Each rule predicts causes of the `diff` catalogue (src/protocol/causes.ts) and a RUN
 * passes when it removes the directory, or mounts a cache or tmpfs over it, in the same step.
 */
export const NPM_CACHE_LEFT = 'NR060-npm-cache-left'
export const YARN_CACHE_LEFT = 'NR061-yarn-cache-left'
export const PNPM_STORE_LEFT = 'NR062-pnpm-store-left'
export const PIP_CACHE_LEFT = 'NR063-pip-cache-left'
export const POETRY_CACHE_LEFT = 'NR064-poetry-cache-left'
export const GO_CACHE_LEFT = 'NR065-go-cache-left'
export const CARGO_CACHE_LEFT = 'NR066-cargo-cache-left'
export const MAVEN_CACHE_LEFT = 'NR067-maven-cache-left'
export const GRADLE_CACHE_LEFT = 'NR068-gradle-cache-left'
export const BUILD_TOOL_CACHE_LEFT = 'NR069-build-tool-cache-left'

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The word after the command name that is not an option: `npm ci` → `ci`; '' when none. */
function subcommand (cmd: SimpleCommand): string {
  return cmd.words.slice(1).find(w => !w.text.startsWith('-'))?.text ?? ''
}

/** The value of `--name VALUE` or `--name=VALUE` (any of `names`). */
function option (cmd: SimpleCommand, names: string[]): string | undefined {
  for (let k = 1; k < cmd.words.length; k++) {
    const t = (cmd.words[k] as Word).text
    for (const n of names) {
      if (t === n) return cmd.words[k + 1]?.text
      if (t.startsWith(`${n}=`)) return t.slice(n.length + 1)
    }
  }
  return undefined
}

/** `NAME=value` before the command, or set by an ARG/ENV of the stage (value unknown, so any removal naming $NAME counts). */
function variable (unit: ShellUnit, cmd: SimpleCommand, name: string): string | undefined {
  const a = cmd.assignments.find(w => w.text.startsWith(`${name}=`))
  if (a != null) return a.text.slice(name.length + 1)
  return unit.env.has(name) ? `$${name}` : undefined
}

/**
 * Whether the unit removes (or mounts over) the default place or the directory a flag or
 * variable moved it to (`--cache /tmp/x`, `$POETRY_CACHE_DIR`, `${NAME}` as written).
 */
function keptOut (unit: ShellUnit, place: RegExp, moved: string | undefined): boolean {
  if (removes(unit, place)) return true
  if (moved == null || moved === '') return false
  const name = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(moved)?.[1]
  const dir = new RegExp(`^${escape(moved.replace(/\/+$/, ''))}(/\\*?)?/?$`)
  return removes(unit, dir) || (name != null && removes(unit, new RegExp(`^\\$\\{?${name}\\}?(/\\*?)?/?$`)))
}

const has = (cmd: SimpleCommand, ...flags: string[]): boolean => cmd.words.some(w => flags.includes(w.text))
const runs = (unit: ShellUnit, name: string, sub: (s: string) => boolean): boolean => unit.commands.some(c => commandName(c) === name && sub(subcommand(c)))

interface Check {
  rule: string
  /** The command that writes the cache. */
  writes: (cmd: SimpleCommand) => boolean
  /** Whether the cache of this command stays out of the layer. */
  cleared: (unit: ShellUnit, cmd: SimpleCommand) => boolean
  message: (cmd: SimpleCommand) => string
}

const NPM_WRITES = new Set(['ci', 'install', 'i', 'in', 'isntall', 'add', 'update', 'up', 'upgrade', 'rebuild', 'exec', 'x', 'pack', 'dedupe', 'prune'])
const YARN_WRITES = new Set(['', 'install', 'add', 'upgrade', 'global', 'workspaces', 'import'])
const PNPM_WRITES = new Set(['install', 'i', 'add', 'fetch', 'update', 'up', 'deploy', 'import'])
const POETRY_WRITES = new Set(['install', 'add', 'update', 'lock', 'sync', 'build', 'export'])
const GO_WRITES = new Set(['build', 'install', 'test', 'get', 'generate', 'vet', 'run', 'mod'])
const CARGO_WRITES = new Set(['build', 'b', 'install', 'fetch', 'vendor', 'test', 't', 'run', 'r', 'update', 'generate-lockfile', 'check', 'c'])

function isPip (cmd: SimpleCommand): boolean {
  const name = commandName(cmd)
  const words = cmd.words.map(w => w.text)
  const pip = /^pip[0-9.]*$/.test(name) || (/^python[0-9.]*$/.test(name) && words[1] === '-m' && /^pip[0-9.]*$/.test(words[2] ?? ''))
  return pip && words.includes('install')
}

const CHECKS: Check[] = [{
  rule: NPM_CACHE_LEFT,
  writes: c => (commandName(c) === 'npm' && NPM_WRITES.has(subcommand(c))) || commandName(c) === 'npx',
  // `npm cache clean` empties _cacache only; the debug logs of every run stay in ~/.npm/_logs.
  cleared: (u, c) => keptOut(u, /(^|\/)\.npm(\/\*?)?\/?$/, option(c, ['--cache']) ?? variable(u, c, 'npm_config_cache') ?? variable(u, c, 'NPM_CONFIG_CACHE')),
  message: c => `${commandName(c)} ${subcommand(c)} writes its cache index (fetch times in milliseconds, HTTP date headers) and a debug log named after the time to ~/.npm`
}, {
  rule: YARN_CACHE_LEFT,
  writes: c => commandName(c) === 'yarn' && YARN_WRITES.has(subcommand(c)),
  cleared: (u, c) => runs(u, 'yarn', s => s === 'cache') || keptOut(u, /(^|\/)(\.cache\/yarn|\.yarn-cache|\.yarn\/berry|\.yarn\/cache)(\/\*?)?\/?$/, option(c, ['--cache-folder']) ?? variable(u, c, 'YARN_CACHE_FOLDER')),
  message: c => `yarn ${subcommand(c) || 'install'} fills the global yarn cache (~/.cache/yarn, /usr/local/share/.cache/yarn) with packages and fetch metadata`
}, {
  rule: PNPM_STORE_LEFT,
  writes: c => commandName(c) === 'pnpm' && PNPM_WRITES.has(subcommand(c)),
  cleared: (u, c) => keptOut(u, /(^|\/)(pnpm\/store|\.pnpm-store|\.local\/share\/pnpm(\/store)?|\.cache\/pnpm|pnpm)(\/\*?)?\/?$/, option(c, ['--store-dir']) ?? variable(u, c, 'PNPM_HOME')),
  message: c => `pnpm ${subcommand(c)} fills the content store and metadata cache (~/.local/share/pnpm/store, ~/.cache/pnpm)`
}, {
  rule: PIP_CACHE_LEFT,
  writes: isPip,
  cleared: (u, c) => has(c, '--no-cache-dir') || variable(u, c, 'PIP_NO_CACHE_DIR') != null || runs(u, 'pip', s => s === 'cache') || runs(u, 'pip3', s => s === 'cache') ||
    keptOut(u, /(^|\/)\.cache\/pip(\/\*?)?\/?$|(^|\/)\.cache(\/\*?)?\/?$/, option(c, ['--cache-dir']) ?? variable(u, c, 'PIP_CACHE_DIR')),
  message: () => 'pip install keeps HTTP responses (with their date headers) and the wheels it built in ~/.cache/pip'
}, {
  rule: POETRY_CACHE_LEFT,
  writes: c => commandName(c) === 'poetry' && POETRY_WRITES.has(subcommand(c)),
  cleared: (u, c) => has(c, '--no-cache') || runs(u, 'poetry', s => s === 'cache') || keptOut(u, /(^|\/)\.cache\/pypoetry(\/\*?)?\/?$/, variable(u, c, 'POETRY_CACHE_DIR')),
  message: c => `poetry ${subcommand(c)} keeps artifacts, repository responses and virtualenvs in its cache (~/.cache/pypoetry)`
}, {
  rule: GO_CACHE_LEFT,
  writes: c => commandName(c) === 'go' && GO_WRITES.has(subcommand(c)),
  cleared: (u, c) => u.commands.some(x => commandName(x) === 'go' && subcommand(x) === 'clean' && has(x, '-cache')) ||
    keptOut(u, /(^|\/)(\.cache\/go-build|go-build|\.cache)(\/\*?)?\/?$/, variable(u, c, 'GOCACHE')),
  message: c => subcommand(c) === 'mod' ? 'go mod fills the module cache ($GOPATH/pkg/mod: download locks, cache/download metadata), and the build cache where it builds' : `go ${subcommand(c)} writes the build cache (~/.cache/go-build: action records with times) and the module cache ($GOPATH/pkg/mod)`
}, {
  rule: CARGO_CACHE_LEFT,
  writes: c => commandName(c) === 'cargo' && CARGO_WRITES.has(subcommand(c)),
  cleared: (u, c) => {
    const registry = keptOut(u, /((^|\/)(\.cargo|cargo)|^\$\{?CARGO_HOME\}?)(\/registry)?(\/\*?)?\/?$/, variable(u, c, 'CARGO_HOME'))
    // `cargo install` builds in a temporary target directory it removes; other commands keep ./target.
    const target = subcommand(c) === 'install' || u.commands.some(x => commandName(x) === 'cargo' && subcommand(x) === 'clean') ||
      keptOut(u, /(^|\/)target(\/\*?)?\/?$|(^|\/)target\/\*\/\.fingerprint$/, option(c, ['--target-dir']) ?? variable(u, c, 'CARGO_TARGET_DIR'))
    return registry && target
  },
  message: c => `cargo ${subcommand(c)} leaves the registry cache and cargo's global cache (~/.cargo/registry, ~/.cargo/.global-cache)${subcommand(c) === 'install' ? '' : ' and the target directory\'s fingerprints, build-script output and dependency files'}`
}, {
  rule: MAVEN_CACHE_LEFT,
  writes: c => /^(mvn|mvnw)$/.test(commandName(c)),
  cleared: (u, c) => {
    const local = c.words.find(w => w.text.startsWith('-Dmaven.repo.local='))?.text.slice('-Dmaven.repo.local='.length)
    return keptOut(u, /(^|\/)\.m2(\/repository)?(\/\*?)?\/?$/, local)
  },
  message: c => `${commandName(c)} downloads into the local repository (~/.m2/repository) with _remote.repositories and *.lastUpdated files that record the time of each lookup`
}, {
  rule: GRADLE_CACHE_LEFT,
  writes: c => /^(gradle|gradlew)$/.test(commandName(c)),
  cleared: (u, c) => keptOut(u, /(^|\/)\.gradle(\/caches)?(\/\*?)?\/?$/, option(c, ['--gradle-user-home', '-g']) ?? variable(u, c, 'GRADLE_USER_HOME')),
  message: c => `${commandName(c)} writes its user home (~/.gradle: caches, daemon registry and logs, native libraries) and the project's .gradle directory`
}]

/** Tools whose output directories keep a cache, as a command or inside a package.json script. */
interface ToolCache {
  what: string
  /** Removal (or mount) of this place keeps it out. */
  place: RegExp
}

const NEXT_CACHE: ToolCache = { what: 'next build keeps the webpack cache in .next/cache', place: /(^|\/)\.next(\/cache)?(\/\*?)?\/?$/ }
const NODE_MODULES_CACHE = (tool: string): ToolCache => ({ what: `${tool} keeps babel-loader, ESLint and webpack caches in node_modules/.cache`, place: /(^|\/)node_modules\/\.cache(\/\*?)?\/?$/ })

function readJson (unit: ShellUnit, file: string): Record<string, unknown> | undefined {
  const text = unit.lookup(unit.dir === '' ? file : `${unit.dir}/${file}`)
  if (text == null) return undefined
  try {
    const v = JSON.parse(text) as unknown
    return v != null && typeof v === 'object' && !Array.isArray(v) ? v as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}

/** The tool cache one command leaves, judged from its words and the project files it reads. */
function toolCache (unit: ShellUnit, run: SimpleCommand): ToolCache | undefined {
  // `npx eslint ...` is judged as `eslint ...`.
  const cmd = commandName(run) === 'npx' ? { ...run, words: run.words.slice(1).filter((w, i) => i > 0 || !w.text.startsWith('-')) } : run
  const name = commandName(cmd)
  const sub = subcommand(cmd)
  if (name === 'eslint' && has(cmd, '--cache')) {
    const where = option(cmd, ['--cache-location'])
    return { what: 'eslint --cache records each file\'s size and time', place: where != null ? new RegExp(`^${escape(where.replace(/\/+$/, ''))}/?$`) : /(^|\/)\.eslintcache$/ }
  }
  if (name === 'tsc') {
    if (option(cmd, ['--incremental']) === 'false') return undefined
    const project = option(cmd, ['-p', '--project']) ?? 'tsconfig.json'
    const options = readJson(unit, project.endsWith('.json') ? project : `${project}/tsconfig.json`)?.compilerOptions as Record<string, unknown> | undefined
    if (has(cmd, '--incremental', '-b', '--build') || options?.incremental === true || options?.composite === true) {
      return { what: 'tsc writes a .tsbuildinfo (incremental or --build)', place: /\.tsbuildinfo$|tsbuildinfo/ }
    }
    return undefined
  }
  if ((name === 'react-scripts' || name === 'vue-cli-service') && sub === 'build') return NODE_MODULES_CACHE(`${name} build`)
  if (name === 'next' && sub === 'build') return NEXT_CACHE
  if (name === 'webpack') {
    const config = ['webpack.config.js', 'webpack.config.cjs', 'webpack.config.mjs'].map(f => unit.lookup(unit.dir === '' ? f : `${unit.dir}/${f}`)).find(t => t != null) ?? ''
    if (/type:\s*['"]filesystem['"]/.test(config)) return { what: 'webpack\'s filesystem cache (cache.type filesystem in webpack.config) is kept in node_modules/.cache/webpack', place: /(^|\/)node_modules\/\.cache(\/webpack)?(\/\*?)?\/?$/ }
    if (/cacheDirectory:\s*true/.test(config)) return { what: 'babel-loader with cacheDirectory: true (webpack.config) keeps its cache in node_modules/.cache/babel-loader', place: /(^|\/)node_modules\/\.cache(\/babel-loader)?(\/\*?)?\/?$/ }
  }
  return undefined
}

/** `npm run build`, `yarn build`, `pnpm run build`: the script's text from package.json. */
function packageScript (unit: ShellUnit, cmd: SimpleCommand): { name: string, text: string } | undefined {
  const name = commandName(cmd)
  if (name !== 'npm' && name !== 'yarn' && name !== 'pnpm') return undefined
  const words = cmd.words.slice(1).filter(w => !w.text.startsWith('-')).map(w => w.text)
  const script = (words[0] === 'run' || words[0] === 'run-script') ? words[1] : name !== 'npm' ? words[0] : undefined
  if (script == null) return undefined
  const scripts = readJson(unit, 'package.json')?.scripts as Record<string, unknown> | undefined
  const text = scripts?.[script]
  return typeof text === 'string' ? { name: script, text } : undefined
}

async function checkShell (unit: ShellUnit, report: Report): Promise<void> {
  // Only a Dockerfile RUN leaves these files in a layer.
  if (unit.context !== 'dockerfile') return
  const at = (cmd: SimpleCommand): number => (cmd.words[0] as Word).start
  const reported = new Set<string>()
  for (const cmd of unit.commands) {
    for (const check of CHECKS) {
      if (reported.has(check.rule) || !check.writes(cmd) || check.cleared(unit, cmd)) continue
      reported.add(check.rule)
      report(check.rule, placeAt(unit, at(cmd), commandText(cmd), check.message(cmd)))
    }
    if (reported.has(BUILD_TOOL_CACHE_LEFT)) continue
    const script = packageScript(unit, cmd)
    // One level of package.json scripts: `npm run build` running `react-scripts build`.
    const inner = script == null ? [] : (await parseShell(script.text)).commands
    for (const c of [cmd, ...inner]) {
      const cache = toolCache(unit, c)
      if (cache == null || removes(unit, cache.place)) continue
      reported.add(BUILD_TOOL_CACHE_LEFT)
      report(BUILD_TOOL_CACHE_LEFT, placeAt(unit, at(cmd), commandText(cmd), `${c === cmd ? '' : `${commandText(cmd)} runs "${script?.text ?? ''}" (package.json): `}${cache.what}`))
      break
    }
  }
}

const HOME_CACHE = (dir: string): string[] => [`/root/${dir}`, `/home/*/${dir}`]

export const ecosystems: RuleFamily = {
  rules: [{
    id: NPM_CACHE_LEFT,
    severity: 'critical',
    leaves: HOME_CACHE('.npm'),
    title: 'npm cache and logs left in the image',
    why: 'npm writes every fetch into ~/.npm/_cacache with the time in milliseconds and the registry\'s HTTP date header, and a debug log named after the time of the run into ~/.npm/_logs; the layer differs on every build (cause npm-cache). npm cache clean empties only the cache, not the logs.',
    fix: 'Remove ~/.npm in the same RUN (npm ci && rm -rf ~/.npm), give npm a cache it removes (npm ci --cache /tmp/npm-cache && rm -rf /tmp/npm-cache), or mount one: RUN --mount=type=cache,target=/root/.npm npm ci.'
  }, {
    id: YARN_CACHE_LEFT,
    severity: 'critical',
    leaves: [...HOME_CACHE('.cache/yarn'), '/usr/local/share/.cache/yarn'],
    title: 'yarn cache left in the image',
    why: 'yarn install copies every package into its global cache with fetch metadata and temporary names; the cache differs between builds (cause yarn-cache).',
    fix: 'yarn install --frozen-lockfile && yarn cache clean in the same RUN, or RUN --mount=type=cache,target=/usr/local/share/.cache/yarn yarn install --frozen-lockfile.'
  }, {
    id: PNPM_STORE_LEFT,
    severity: 'critical',
    leaves: [...HOME_CACHE('.local/share/pnpm'), ...HOME_CACHE('.cache/pnpm'), '/pnpm/store'],
    title: 'pnpm store left in the image',
    why: 'pnpm install fills a content-addressed store with per-file check times and a metadata cache of registry responses; both differ between builds (cause pnpm-store).',
    fix: 'As in pnpm\'s Docker guide: ENV PNPM_HOME=/pnpm and RUN --mount=type=cache,id=pnpm,target=/pnpm/store pnpm install --frozen-lockfile; or remove the store in the same RUN.'
  }, {
    id: PIP_CACHE_LEFT,
    severity: 'critical',
    leaves: HOME_CACHE('.cache/pip'),
    title: 'pip cache left in the image',
    why: 'pip keeps HTTP responses with their date headers, wheels it built and a self-check file with the time of the run in ~/.cache/pip (cause pip-cache).',
    fix: 'ENV PIP_NO_CACHE_DIR=1, or pip install --no-cache-dir, or RUN --mount=type=cache,target=/root/.cache/pip pip install ....'
  }, {
    id: POETRY_CACHE_LEFT,
    severity: 'critical',
    leaves: HOME_CACHE('.cache/pypoetry'),
    title: 'Poetry cache left in the image',
    why: 'poetry keeps downloaded artifacts, repository responses with their fetch times and virtualenvs with random names in ~/.cache/pypoetry (cause poetry-cache).',
    fix: 'ENV POETRY_CACHE_DIR=/tmp/poetry_cache, then RUN poetry install && rm -rf $POETRY_CACHE_DIR (or mount a cache at $POETRY_CACHE_DIR); poetry install --no-cache also works.'
  }, {
    id: GO_CACHE_LEFT,
    severity: 'critical',
    leaves: [...HOME_CACHE('.cache/go-build'), ...HOME_CACHE('go/pkg/mod'), '/go/pkg/mod', ...HOME_CACHE('.config/go')],
    title: 'Go build and module caches left in the image',
    why: 'go build writes action records with the time of each compile to ~/.cache/go-build and downloads modules (with lock files) into $GOPATH/pkg/mod; Go 1.23+ also writes telemetry counters named after the day (cause go-cache).',
    fix: 'Build in a builder stage and COPY --from only the binary, or RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=cache,target=/go/pkg/mod go build -trimpath ..., or end the RUN with go clean -cache -modcache.'
  }, {
    id: CARGO_CACHE_LEFT,
    severity: 'critical',
    // The target directory is under the WORKDIR, unknown here; a builder stage copies the binary out of it, not its fingerprints.
    leaves: [...HOME_CACHE('.cargo'), '/usr/local/cargo/registry'],
    title: 'cargo registry cache and target directory left in the image',
    why: 'cargo records fetch and use times in its registry cache and global cache database, and the target directory keeps fingerprints, build-script output and incremental state of the run (cause cargo-cache).',
    fix: 'Build in a builder stage and COPY --from only the binary, or RUN --mount=type=cache,target=/usr/local/cargo/registry --mount=type=cache,target=/app/target cargo build --release && cp target/release/app /usr/local/bin/.'
  }, {
    id: MAVEN_CACHE_LEFT,
    severity: 'critical',
    leaves: HOME_CACHE('.m2'),
    title: 'Maven local repository left in the image',
    why: 'Maven\'s resolver writes _remote.repositories, *.lastUpdated and resolver-status.properties files with the time of each lookup next to every artifact in ~/.m2/repository (cause maven-cache).',
    fix: 'Build in a builder stage and COPY --from the jar, or RUN --mount=type=cache,target=/root/.m2 mvn -B package, or mvn -Dmaven.repo.local=/tmp/m2 package && rm -rf /tmp/m2.'
  }, {
    id: GRADLE_CACHE_LEFT,
    severity: 'critical',
    leaves: HOME_CACHE('.gradle'),
    title: 'Gradle caches left in the image',
    why: 'Gradle writes file hashes with times, lock files, a daemon registry and daemon logs to ~/.gradle, and build state to the project\'s .gradle directory (cause gradle-cache).',
    fix: 'Build in a builder stage and COPY --from the artifact, or RUN --mount=type=cache,target=/root/.gradle gradle build --no-daemon, or remove ~/.gradle and .gradle in the same RUN.'
  }, {
    id: BUILD_TOOL_CACHE_LEFT,
    severity: 'high',
    leaves: ['/'],
    title: 'Build tool cache left in the image (ESLint, Babel, webpack, TypeScript)',
    why: 'eslint --cache, babel-loader\'s cacheDirectory, webpack\'s filesystem cache (react-scripts, vue-cli-service, next build) and tsc --incremental or --build write caches with file times and the order work finished (causes eslint-cache, babel-cache, webpack-cache, tsbuildinfo).',
    fix: 'Turn the cache off for the image build (no --cache, BABEL_DISABLE_CACHE=1, cache: false, --incremental false), or remove it in the same RUN: rm -rf node_modules/.cache .next/cache .eslintcache *.tsbuildinfo.'
  }],
  shell: checkShell
}
