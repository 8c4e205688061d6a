/** The line every format prints for findings the audit skipped as outside every release build. */
export function skippedLine (count: number): string {
  return `${count} finding${count === 1 ? '' : 's'} in files or stages no release build reads; --all to show`
}
