/**
 * Typed errors of imgdump. Every failure the user can cause (bad input, a refused save,
 * an incompatible image) is an ImgdumpError whose `phase` decides the exit code
 * (see exit-codes.ts) and whose message says what was wrong and what to do.
 * Anything else that escapes is a bug and is reported as `internal`.
 */
export type ErrorPhase =
  | 'usage' // wrong command-line use
  | 'io' // a file or socket could not be read or written
  | 'parse' // an input file is malformed
  | 'edit' // a valid file cannot be rewritten as asked
  | 'write' // producing an output failed
  | 'verify' // a checksum or structural check of an image failed
  | 'compat' // an image does not fit this machine, its libraries or its runtime
  | 'session' // a running session could not be reached or refused
  | 'save' // the runtime refused or failed a save
  | 'internal' // a bug in imgdump

export interface ErrorDetails {
  /** Byte offset in the input where the problem was found. */
  offset?: number | bigint
  /** The offending value, when there is one. */
  value?: number | bigint | string
  /** What the user can do about it. */
  hint?: string
  cause?: unknown
}

export class ImgdumpError extends Error {
  readonly phase: ErrorPhase
  /** Stable machine-readable code, e.g. `ELF_TRUNCATED`; documented in docs/exit-codes.md. */
  readonly code: string
  readonly offset?: number | bigint
  readonly value?: number | bigint | string
  readonly hint?: string

  constructor(phase: ErrorPhase, code: string, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : {cause: details.cause})
    this.name = 'ImgdumpError'
    this.phase = phase
    this.code = code
    this.offset = details.offset
    this.value = details.value
    this.hint = details.hint
  }

  /** The JSON shape printed under `--json`: bigints as decimal strings. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {phase: this.phase, code: this.code, message: this.message}
    if (this.offset !== undefined) out.offset = typeof this.offset === 'bigint' ? this.offset.toString() : this.offset
    if (this.value !== undefined) out.value = typeof this.value === 'bigint' ? this.value.toString() : this.value
    if (this.hint !== undefined) out.hint = this.hint
    return out
  }
}

/** Turn a Node system error (ENOENT, EACCES, …) on `path` into a typed io error. */
export function ioError(err: unknown, path: string, action = 'read'): ImgdumpError {
  const e = err as NodeJS.ErrnoException
  const reason = e?.code === 'ENOENT' ? 'no such file' :
    e?.code === 'EACCES' || e?.code === 'EPERM' ? 'permission denied' :
    e?.code === 'EISDIR' ? 'is a directory' :
    e?.code === 'ENOSPC' ? 'no space left on device' :
    e?.code === 'EFBIG' ? 'file too large (RLIMIT_FSIZE or filesystem limit)' :
    e?.message ?? String(err)
  return new ImgdumpError('io', `IO_${e?.code ?? 'ERROR'}`, `cannot ${action} ${path}: ${reason}`, {cause: err})
}

/**
 * Anything thrown, as a typed error: ImgdumpErrors as they are, Node system errors (ENOSPC,
 * EFBIG, EACCES, …) as io errors, the rest as an internal error (a bug) described by `what`.
 */
export function asTypedError(err: unknown, what = 'internal error'): ImgdumpError {
  if (err instanceof ImgdumpError) return err
  const e = err as NodeJS.ErrnoException
  const message = (e?.message ?? String(err)).split('\n')[0].replace(/^Error: /, '')
  if (typeof e?.code === 'string' && /^E[A-Z0-9]+$/.test(e.code)) return new ImgdumpError('io', `IO_${e.code}`, message, {cause: err})
  return new ImgdumpError('internal', 'INTERNAL', `${what}: ${message}`, {cause: err})
}
