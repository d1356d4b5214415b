/**
 * Newline framing for the protocol: feed it chunks as they arrive, get complete lines.
 * A line longer than the limit is an error (docs/protocol.md: at most 1 MiB a line),
 * detected as soon as the buffered part exceeds it, so a peer cannot make us buffer more.
 */
import {ImgdumpError} from '../errors.js'
import {MAX_LINE} from './protocol.js'

export class LineReader {
  private parts: Buffer[] = []
  private pending = 0

  constructor(private readonly limit = MAX_LINE) {}

  /** The complete lines in `chunk` (plus what was buffered before), without their '\n'. */
  push(chunk: Buffer): string[] {
    const lines: string[] = []
    let start = 0
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      this.check(this.pending + nl - start)
      this.parts.push(chunk.subarray(start, nl))
      lines.push(Buffer.concat(this.parts).toString('utf8'))
      this.parts = []
      this.pending = 0
      start = nl + 1
    }
    if (start < chunk.length) {
      this.check(this.pending + chunk.length - start)
      this.parts.push(Buffer.from(chunk.subarray(start)))
      this.pending += chunk.length - start
    }
    return lines
  }

  /** Bytes of an unfinished line (non-zero at EOF means the peer died mid-message). */
  get buffered(): number {
    return this.pending
  }

  private check(len: number): void {
    if (len > this.limit) {
      throw new ImgdumpError('session', 'PROTO_LINE_TOO_LONG', `a protocol line exceeds the ${this.limit}-byte limit`, {value: len})
    }
  }
}
