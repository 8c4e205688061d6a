/**
 * The catalogue of reasons two builds of the same source differ, file by file. Pure data:
 * `diff`, divergence reports, `status` and the dashboard name causes by these ids, and
 * docs/causes.md describes each one. Ids are stable: a report signed today must still read
 * the same next year, so an id is never reused for another meaning.
 */

export type CauseId =
  | 'machine-id'
  | 'fontconfig-cache'
  | 'ldconfig-aux-cache'
  | 'package-logs'
  | 'package-backups'
  | 'apt-lists'
  | 'package-drift'
  | 'python-bytecode'
  | 'npm-cache'
  | 'yarn-cache'
  | 'pnpm-store'
  | 'pip-cache'
  | 'poetry-cache'
  | 'go-cache'
  | 'cargo-cache'
  | 'maven-cache'
  | 'gradle-cache'
  | 'eslint-cache'
  | 'babel-cache'
  | 'webpack-cache'
  | 'tsbuildinfo'
  | 'gzip-header'
  | 'zip-times'
  | 'embedded-timestamp'
  | 'embedded-path'
  | 'file-order'
  | 'mtime'
  | 'owner'
  | 'mode'
  | 'symlink-target'
  | 'hard-link'
  | 'file-set'
  | 'image-config'
  | 'unknown'

export interface Cause {
  id: CauseId
  /** One line: what differs. */
  summary: string
  /** Why it differs from one build to the next. */
  why: string
  /** What to change, as Dockerfile text. */
  fix: string
  /** The audit rule that predicts it from the Dockerfile, when a Dockerfile can reveal it. */
  auditRule?: string
  /**
   * For leftovers: the paths (shell globs) whose removal, at the end of the RUN that wrote
   * them, is the fix. Lets a tool apply the fix, not only print it. `$HOME` is left to the RUN's
   * shell (caches live in the home of whoever builds); a relative path is under the WORKDIR.
   */
  remove?: string[]
  /**
   * For leftovers spread over many directories: the name of the directories (`__pycache__`)
   * whose removal is the fix; `diff --fix` removes those the differing paths lie in.
   */
  removeDirsNamed?: string
}

export const CAUSES: Readonly<Record<CauseId, Cause>> = {
  'machine-id': {
    id: 'machine-id',
    summary: 'random machine id (/etc/machine-id, /var/lib/dbus/machine-id)',
    why: 'systemd and dbus packages generate a random 128-bit id when they are installed',
    fix: 'RUN ... && rm -f /etc/machine-id /var/lib/dbus/machine-id   # generated at first boot; or: truncate -s 0 /etc/machine-id',
    auditRule: 'NR054-machine-id-left',
    remove: ['/etc/machine-id', '/var/lib/dbus/machine-id']
  },
  'fontconfig-cache': {
    id: 'fontconfig-cache',
    summary: 'fontconfig caches (/var/cache/fontconfig/*.cache-*)',
    why: 'fc-cache records the scan time and directory mtimes in each cache file',
    fix: 'RUN ... && rm -rf /var/cache/fontconfig/*   # rebuilt at first use; or run fc-cache after touching font dirs to SOURCE_DATE_EPOCH',
    auditRule: 'NR055-font-cache-left',
    remove: ['/var/cache/fontconfig/*']
  },
  'ldconfig-aux-cache': {
    id: 'ldconfig-aux-cache',
    summary: 'ldconfig auxiliary cache (/var/cache/ldconfig/aux-cache)',
    why: 'ldconfig stores the inode numbers and ctimes of the libraries it scanned',
    fix: 'RUN ... && rm -f /var/cache/ldconfig/aux-cache',
    auditRule: 'NR056-ldconfig-cache-left',
    remove: ['/var/cache/ldconfig/aux-cache']
  },
  'package-logs': {
    id: 'package-logs',
    summary: 'package manager logs (/var/log/dpkg.log, /var/log/apt/*.log, /var/log/alternatives.log)',
    why: 'dpkg, apt and update-alternatives log every action with the wall-clock time',
    fix: 'RUN ... && rm -rf /var/log/dpkg.log /var/log/apt/* /var/log/alternatives.log /var/log/bootstrap.log',
    auditRule: 'NR052-logs-left',
    remove: ['/var/log/dpkg.log', '/var/log/apt/*', '/var/log/alternatives.log', '/var/log/bootstrap.log']
  },
  'package-backups': {
    id: 'package-backups',
    summary: 'package database backups (/var/lib/dpkg/*-old, /var/cache/debconf/*-old)',
    why: 'dpkg and debconf keep the previous state of their databases, which includes install-time data',
    fix: 'RUN ... && rm -f /var/lib/dpkg/*-old /var/cache/debconf/*-old',
    remove: ['/var/lib/dpkg/*-old', '/var/cache/debconf/*-old']
  },
  'apt-lists': {
    id: 'apt-lists',
    summary: 'package lists and apt caches (/var/lib/apt/lists, /var/cache/apt)',
    why: 'apt-get update downloads the archive index of the day, which changes daily',
    fix: 'RUN ... && rm -rf /var/lib/apt/lists/* /var/cache/apt/*',
    auditRule: 'NR051-apt-lists-left',
    remove: ['/var/lib/apt/lists/*', '/var/cache/apt/*']
  },
  'package-drift': {
    id: 'package-drift',
    summary: 'different package versions were installed',
    why: 'the package archive moved between the builds: unpinned installs take whatever is current',
    fix: 'pin the package archive (e.g. snapshot.debian.org with the release date in sources.list) or pin versions: apt-get install PKG=VERSION',
    auditRule: 'NR010-apt-unpinned'
  },
  'python-bytecode': {
    id: 'python-bytecode',
    summary: 'Python bytecode (__pycache__/*.pyc)',
    why: 'timestamp-based .pyc files record the source mtime, and compilation order changes marshalled references',
    fix: 'pip install --no-compile, and remove the __pycache__ directories the RUN wrote (python3 -m venv and pip compile bytecode even with PYTHONDONTWRITEBYTECODE=1): RUN ... && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +',
    auditRule: 'NR058-python-bytecode',
    removeDirsNamed: '__pycache__'
  },
  'npm-cache': {
    id: 'npm-cache',
    summary: 'npm cache and logs (~/.npm/_cacache, ~/.npm/_logs)',
    why: 'npm records each fetch in its cache index with the time in milliseconds and the registry\'s HTTP date header, and names its debug logs after the time of the run',
    fix: 'RUN --mount=type=cache,target=/root/.npm npm ci   # or: RUN npm ci --cache /tmp/npm-cache && rm -rf /tmp/npm-cache; or: npm ci && npm cache clean --force && rm -rf ~/.npm',
    auditRule: 'NR060-npm-cache-left',
    remove: ['$HOME/.npm']
  },
  'yarn-cache': {
    id: 'yarn-cache',
    summary: 'yarn cache and install state (~/.cache/yarn, /usr/local/share/.cache/yarn, .yarn/install-state.gz)',
    why: 'yarn writes every fetched package and its metadata (fetch times, random temporary names) to its global cache; Yarn 2+ also writes an install state that records the run',
    fix: 'RUN --mount=type=cache,target=/usr/local/share/.cache/yarn yarn install --frozen-lockfile   # or: yarn install --frozen-lockfile && yarn cache clean',
    auditRule: 'NR061-yarn-cache-left',
    remove: ['$HOME/.cache/yarn', '/usr/local/share/.cache/yarn', '.yarn/install-state.gz']
  },
  'pnpm-store': {
    id: 'pnpm-store',
    summary: 'pnpm content store, metadata cache and install state (~/.local/share/pnpm/store, ~/.cache/pnpm, node_modules/.modules.yaml)',
    why: 'pnpm keeps a content-addressed store with per-file check times and a metadata cache of registry responses, and records the time of the last prune in node_modules/.modules.yaml',
    fix: 'RUN --mount=type=cache,id=pnpm,target=/pnpm/store pnpm install --frozen-lockfile   # with ENV PNPM_HOME=/pnpm, as in pnpm\'s Docker guide; or remove the store in the same RUN',
    auditRule: 'NR062-pnpm-store-left',
    remove: ['$HOME/.local/share/pnpm/store', '$HOME/.cache/pnpm']
  },
  'pip-cache': {
    id: 'pip-cache',
    summary: 'pip\'s HTTP and wheel cache (~/.cache/pip)',
    why: 'pip stores HTTP responses with their date headers, wheels it built with their build times, and a self-check file with the time of the run',
    fix: 'ENV PIP_NO_CACHE_DIR=1   # or: pip install --no-cache-dir ...; or: RUN --mount=type=cache,target=/root/.cache/pip pip install ...',
    auditRule: 'NR063-pip-cache-left',
    remove: ['$HOME/.cache/pip']
  },
  'poetry-cache': {
    id: 'poetry-cache',
    summary: 'Poetry cache (~/.cache/pypoetry: package artifacts, repository metadata, virtualenvs)',
    why: 'poetry caches downloaded artifacts and repository responses with their fetch times, and creates its virtualenvs there with random names',
    fix: 'ENV POETRY_CACHE_DIR=/tmp/poetry_cache POETRY_VIRTUALENVS_IN_PROJECT=1, then RUN poetry install --no-root && rm -rf $POETRY_CACHE_DIR   # or --mount=type=cache,target=/tmp/poetry_cache',
    auditRule: 'NR064-poetry-cache-left',
    remove: ['$HOME/.cache/pypoetry']
  },
  'go-cache': {
    id: 'go-cache',
    summary: 'Go build and module caches (~/.cache/go-build, $GOPATH/pkg/mod, ~/.config/go/telemetry)',
    why: 'the build cache holds action records with the time of each compile and trimming logs; the module cache keeps download locks and partial files; telemetry counters are named after the day',
    fix: 'RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=cache,target=/go/pkg/mod go build -trimpath ...   # or: go build ... && go clean -cache -modcache; build the binary in a builder stage and COPY --from it',
    auditRule: 'NR065-go-cache-left',
    remove: ['$HOME/.cache/go-build', '$HOME/.config/go/telemetry']
  },
  'cargo-cache': {
    id: 'cargo-cache',
    summary: 'cargo registry cache and target directory state (~/.cargo/registry, ~/.cargo/git, target/*/.fingerprint, deps, build, incremental)',
    why: 'cargo records fetch and use times in its registry cache and global cache database, and the target directory holds fingerprints, build-script output and incremental state with times and hashes of the run',
    fix: 'build in a builder stage and COPY --from only the binary; or RUN --mount=type=cache,target=/usr/local/cargo/registry --mount=type=cache,target=/app/target cargo build --release && cp target/release/app /usr/local/bin/; or end the RUN with the removal of the registry cache and the target directory\'s build state (the binary stays)',
    auditRule: 'NR066-cargo-cache-left',
    remove: ['$HOME/.cargo/registry', '$HOME/.cargo/git', '$HOME/.cargo/.package-cache', '$HOME/.cargo/.package-cache-mutate', '$HOME/.cargo/.global-cache', '/usr/local/cargo/registry', 'target/*/.fingerprint', 'target/*/build', 'target/*/deps', 'target/*/incremental', 'target/*/.cargo-lock', 'target/*/*.d', 'target/.rustc_info.json', 'target/CACHEDIR.TAG']
  },
  'maven-cache': {
    id: 'maven-cache',
    summary: 'Maven local repository (~/.m2/repository: _remote.repositories, *.lastUpdated, resolver-status.properties)',
    why: 'Maven\'s resolver writes the time of each lookup and the remote it used next to every artifact it downloads',
    fix: 'RUN --mount=type=cache,target=/root/.m2 mvn -B package   # or: mvn -Dmaven.repo.local=/tmp/m2 package && rm -rf /tmp/m2; build in a builder stage and COPY --from the jar',
    auditRule: 'NR067-maven-cache-left',
    remove: ['$HOME/.m2/repository']
  },
  'gradle-cache': {
    id: 'gradle-cache',
    summary: 'Gradle user home and project caches (~/.gradle/caches, daemon, native, wrapper; project .gradle/)',
    why: 'Gradle writes file hashes with times, lock files, daemon registries and logs with process ids and times',
    fix: 'RUN --mount=type=cache,target=/root/.gradle gradle build --no-daemon   # or: gradle build --no-daemon && rm -rf ~/.gradle .gradle; build in a builder stage and COPY --from the artifact',
    auditRule: 'NR068-gradle-cache-left',
    remove: ['$HOME/.gradle', '.gradle']
  },
  'eslint-cache': {
    id: 'eslint-cache',
    summary: 'ESLint cache (.eslintcache, node_modules/.cache/eslint-webpack-plugin)',
    why: 'eslint --cache records each linted file\'s size and modification time, which are the times of the checkout',
    fix: 'lint without --cache in the image build, or eslint --cache --cache-location /tmp/eslintcache and remove it in the same RUN',
    auditRule: 'NR069-build-tool-cache-left',
    remove: ['.eslintcache', 'node_modules/.cache/eslint-webpack-plugin']
  },
  'babel-cache': {
    id: 'babel-cache',
    summary: 'Babel caches (node_modules/.cache/babel-loader, node_modules/.cache/@babel/register, ~/.babel.json)',
    why: 'babel-loader\'s cacheDirectory and @babel/register store compiled files under names derived from the options and environment, with the source times',
    fix: 'ENV BABEL_DISABLE_CACHE=1   # or cacheDirectory: false for production builds; or: npm run build && rm -rf node_modules/.cache',
    auditRule: 'NR069-build-tool-cache-left',
    remove: ['node_modules/.cache/babel-loader', 'node_modules/.cache/@babel']
  },
  'webpack-cache': {
    id: 'webpack-cache',
    summary: 'webpack persistent cache (node_modules/.cache/webpack, terser-webpack-plugin, .next/cache)',
    why: 'webpack\'s filesystem cache serialises module timestamps, build dependencies and pack files in the order work finished',
    fix: 'cache: false (or cache: { type: \'memory\' }) for production builds; or: npm run build && rm -rf node_modules/.cache .next/cache',
    auditRule: 'NR069-build-tool-cache-left',
    remove: ['node_modules/.cache/webpack', 'node_modules/.cache/terser-webpack-plugin', '.next/cache']
  },
  tsbuildinfo: {
    id: 'tsbuildinfo',
    summary: 'TypeScript incremental build info (*.tsbuildinfo)',
    why: 'tsc --incremental or --build writes a .tsbuildinfo that records file versions, signatures and option paths of the compile, in the order files were checked',
    fix: 'compile with --incremental false for the image (or point tsBuildInfoFile outside the copied output) and remove *.tsbuildinfo in the same RUN',
    auditRule: 'NR069-build-tool-cache-left',
    remove: ['*.tsbuildinfo']
  },
  'gzip-header': {
    id: 'gzip-header',
    summary: 'gzip files with an embedded time or name',
    why: 'gzip writes the input file\'s mtime and name into its header unless told not to',
    fix: 'use gzip -n (no name, no time), or set the member times to SOURCE_DATE_EPOCH before compressing'
  },
  'zip-times': {
    id: 'zip-times',
    summary: 'zip/jar/wheel members with embedded times',
    why: 'each zip member records its file time; the order of members follows the file system',
    fix: 'touch -d @$SOURCE_DATE_EPOCH the inputs and add them in sorted order (zip -X, or strip-nondeterminism)'
  },
  'embedded-timestamp': {
    id: 'embedded-timestamp',
    summary: 'build date or time written into a file',
    why: 'a build step embeds the current date (date, __DATE__, -ldflags -X main.buildDate=...)',
    fix: 'derive the date from SOURCE_DATE_EPOCH: ARG SOURCE_DATE_EPOCH, then date -u -d @$SOURCE_DATE_EPOCH',
    auditRule: 'NR002-build-time-embedded'
  },
  'embedded-path': {
    id: 'embedded-path',
    summary: 'temporary build path written into a file',
    why: 'a random temporary directory name ended up in the output',
    fix: 'build in a fixed directory (WORKDIR /build), and use -trimpath / -ffile-prefix-map=$PWD=.'
  },
  'file-order': {
    id: 'file-order',
    summary: 'same files, different order in the layer',
    why: 'the layer was written in directory order of the build file system',
    fix: 'build with a current BuildKit and rewrite-timestamp (tar entries are sorted); avoid tools that write layers themselves'
  },
  mtime: {
    id: 'mtime',
    summary: 'file times differ (newer than SOURCE_DATE_EPOCH or unclamped)',
    why: 'files were written at build time and their times were not clamped',
    fix: 'build with --output ...,rewrite-timestamp=true and pass SOURCE_DATE_EPOCH (neko-rebuilder does both)',
    auditRule: 'NR041-rewrite-timestamp-missing'
  },
  owner: {
    id: 'owner',
    summary: 'file owners (uid/gid) differ',
    why: 'a uid or gid was allocated at build time (useradd without --uid, system users created in a different order)',
    fix: 'create users and groups with fixed ids: groupadd --gid N, useradd --uid N; COPY --chown=N:N'
  },
  mode: {
    id: 'mode',
    summary: 'file modes differ',
    why: 'the mode came from the build machine (umask, checkout modes)',
    fix: 'set modes explicitly: COPY --chmod=0644, or chmod in the RUN that creates the file',
    auditRule: 'NR050-copy-metadata-implicit'
  },
  'symlink-target': {
    id: 'symlink-target',
    summary: 'a symbolic link points elsewhere',
    why: 'the link target was chosen at build time (update-alternatives order, versioned paths)',
    fix: 'create the link explicitly with ln -sf in the Dockerfile'
  },
  'hard-link': {
    id: 'hard-link',
    summary: 'hard links differ (a file in one build, a link in the other)',
    why: 'the layer writer links identical files in the order it meets them',
    fix: 'avoid creating hard links in the build (cp instead of ln), or remove the duplicates'
  },
  'file-set': {
    id: 'file-set',
    summary: 'a file exists in one build only',
    why: 'the build step wrote a file with a changing name, or left a temporary file behind',
    fix: 'remove temporary files in the RUN that creates them'
  },
  'image-config': {
    id: 'image-config',
    summary: 'the image config differs (created time, history, labels, environment)',
    why: 'the config records times and build arguments',
    fix: 'pass SOURCE_DATE_EPOCH (buildx sets created and history times from it) and avoid labels with dates'
  },
  unknown: {
    id: 'unknown',
    summary: 'not recognised: the content differs and no known format or pattern explains it',
    why: 'no evidence at hand names the cause',
    fix: 'compare the two files by hand (extract them with: docker run --rm IMAGE cat PATH); diffoscope shows binary differences'
  }
}

/** Causes in catalogue order, for documentation and tests. */
export const CAUSE_IDS = Object.keys(CAUSES) as CauseId[]

/** The short form carried by every differing path in a diff. */
export interface CauseRef {
  id: CauseId
  summary: string
  fix: string
  auditRule?: string
}

export function causeRef (id: CauseId): CauseRef {
  const c = CAUSES[id]
  return { id: c.id, summary: c.summary, fix: c.fix, ...(c.auditRule != null ? { auditRule: c.auditRule } : {}) }
}

export function isCauseId (s: string): s is CauseId {
  return Object.hasOwn(CAUSES, s)
}
