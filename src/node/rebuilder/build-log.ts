import { createWriteStream, type WriteStream } from 'node:fs'

/** Recent log text kept in memory for classification; the file keeps everything. */
const TAIL_CHARS = 1024 * 1024
const STEP_HEADER = /^#(\d+) (\[[^\]]+\] .*)$/m

/**
 * The log of one rebuild: every prepare and build step appended to one file, with the most
 * recent part and every BuildKit step header kept in memory so a failure can be classified
 * without reading the file back.
 */
export class BuildLog {
  private readonly file: WriteStream
  private tail = ''
  /** BuildKit vertex number → `[stage n/m] INSTRUCTION`, for the last build run. */
  readonly steps = new Map<number, string>()

  constructor (readonly path: string) {
    this.file = createWriteStream(path, { flags: 'a' })
  }

  write (chunk: string | Buffer): void {
    this.file.write(chunk)
    this.tail += typeof chunk === 'string' ? chunk : chunk.toString('utf8')
    if (this.tail.length > 2 * TAIL_CHARS) this.tail = this.tail.slice(-TAIL_CHARS)
  }

  /** Records a step header seen in buildx output. */
  step (line: string): { index: number, step: string } | undefined {
    const m = STEP_HEADER.exec(line)
    if (m?.[1] == null || m[2] == null) return undefined
    this.steps.set(Number(m[1]), m[2])
    return { index: Number(m[1]), step: m[2] }
  }

  text (): string {
    return this.tail.length > TAIL_CHARS ? this.tail.slice(-TAIL_CHARS) : this.tail
  }

  async close (): Promise<void> {
    await new Promise<void>(resolve => this.file.end(resolve))
  }
}
