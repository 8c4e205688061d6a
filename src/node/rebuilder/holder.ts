import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'

/**
 * Who holds something left on disk or on the engine (a workspace, a build lock): host, pid
 * and a token of this process, so whoever finds it later can tell whether its holder still
 * runs. The token tells this process apart from an earlier one that had the same pid (a
 * restarted container).
 */
const TOKEN = randomUUID()

export function holderTag (): string {
  return `${hostname()} ${process.pid} ${TOKEN}`
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * True when the holder is known to be gone: a process of this host that no longer runs (or
 * an earlier process with this pid), or an unreadable tag. A holder on another host is
 * never known to be gone.
 */
export function holderGone (tag: string | undefined): boolean {
  const m = /^(\S+) (\d+) (\S+)$/.exec(tag ?? '')
  if (m == null) return true
  if (m[1] !== hostname()) return false
  const pid = Number(m[2])
  if (pid === process.pid) return m[3] !== TOKEN
  return !alive(pid)
}
