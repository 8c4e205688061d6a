/**
 * One line for an error from the operating system (a file, a port, a socket): what was
 * refused and what to do, without a stack trace. Anything else returns undefined.
 */
export function describeOsError (err: unknown): string | undefined {
  const e = err as (NodeJS.ErrnoException & { address?: string, port?: number, dest?: string }) | undefined
  if (e == null || typeof e !== 'object' || typeof e.code !== 'string') return undefined
  const where = e.path ?? e.address
  const subject = where != null ? `${where}${e.dest != null ? ` -> ${e.dest}` : ''}` : (e.syscall ?? 'a system call')
  switch (e.code) {
    case 'EACCES':
    case 'EPERM':
      if (isDockerSocket(where)) return dockerSocketDenied(where ?? '')
      return `permission denied: ${subject}${e.syscall != null ? ` (${e.syscall})` : ''}`
    case 'EADDRINUSE':
      return `address already in use: ${e.address ?? ''}${e.port != null ? `:${e.port}` : ''} (another process listens there; pick another port)`
    case 'EADDRNOTAVAIL':
      return `address not available on this machine: ${e.address ?? ''}${e.port != null ? `:${e.port}` : ''}`
    case 'ENOTDIR':
      return `not a directory: a file is in the way of ${subject}`
    case 'EISDIR':
      return `is a directory, expected a file: ${subject}`
    case 'ENOENT':
      return `no such file or directory: ${subject}`
    case 'EEXIST':
      return `already exists: ${subject}`
    case 'EROFS':
      return `read-only file system: ${subject}`
    case 'ENOSPC':
      return `no space left on the device holding ${subject}`
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files (raise the limit with ulimit -n)'
    case 'ECONNREFUSED':
      if (isDockerSocket(where)) return `the Docker engine does not answer at ${where ?? ''}; start dockerd, or point DOCKER_HOST at a running engine`
      return `connection refused: ${subject}`
    default:
      return undefined
  }
}

/** The Docker socket, wherever DOCKER_HOST puts it. */
export function isDockerSocket (path: string | undefined): boolean {
  return path != null && /docker\.sock$/.test(path)
}

export function dockerSocketDenied (socket: string): string {
  return `permission denied opening the Docker socket ${socket}: you are not in the docker group (sudo usermod -aG docker $USER, then log in again or run \`newgrp docker\`)`
}
