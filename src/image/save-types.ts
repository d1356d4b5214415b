/**
 * The seam between the session side (src/session: protocol, orchestration) and the image
 * side (src/image: planning and finalizing an image). The session side parses a protocol
 * `save` message (docs/protocol.md) into a SaveRequest, asks the image side for a plan,
 * passes the output fd to the runtime, waits for `written`, then asks the image side to
 * finalize. Nothing here knows ELF or Mach-O.
 */

export type SaveMode = 'continue' | 'exec' | 'exit'

export interface LibraryFact {
  path: string
  base: bigint
  /** Lower-case hex of the GNU build-id note, or null if the library has none. */
  buildId: string | null
}

/** Everything the runtime reports about itself in a `save` message. */
export interface SaveRequest {
  id: number
  /** Absolute path of the image to write. */
  path: string
  mode: SaveMode
  /** Generation of the new image (restored generation + 1). */
  generation: bigint
  /** The running executable (the runtime, or an image it was restored from). */
  exe: string
  loadBias: bigint
  phdr: bigint
  heap: {base: bigint; brk: bigint; reserve: bigint; header: bigint}
  regions: {addr: bigint; size: bigint}[]
  libraries: LibraryFact[]
  pinning: {noRandomize: boolean; stack: 'finite' | 'unlimited'; stackLimit: bigint}
  /** The image this process was restored from, or null when fresh. */
  origin: string | null
}

/** One range of the runtime's memory that the runtime itself copies into the output. */
export interface PlannedWrite {
  addr: bigint
  size: bigint
  offset: bigint
}

/** A planned image: what the runtime must write, plus the image side's private state. */
export interface ImagePlan {
  request: SaveRequest
  /** Sorted by offset. */
  writes: PlannedWrite[]
  /** Address of the heap header (written from a sanitised copy by the runtime). */
  headerCopy: bigint
  /** Final size of the image file in bytes. */
  fileSize: bigint
  /**
   * Finalize rewrites the whole file (Mach-O: the image is rebuilt around the payloads), so
   * starting writeback while the runtime writes would only make that rewrite wait on it.
   */
  rewritesOutput?: boolean
}

/** The output file being built: a temp file in the target directory until committed. */
export interface PendingOutput {
  /** Read-write descriptor of the temp file (sent to the runtime with SCM_RIGHTS). */
  readonly fd: number
  readonly target: string
  /**
   * The commit fsyncs (IMGDUMP_SYNC is not 0): the runtime then starts writeback as it writes
   * (the plan's `flush`), so the final fsync waits for the tail only.
   */
  readonly durable: boolean
  /** fsync, link into place and rename over the target atomically; closes fd. */
  commit(): void
  /** Close and forget the temp file; the previous image is untouched. Idempotent. */
  discard(): void
}

export interface SaveResult {
  path: string
  bytes: bigint
  /** Pages (4 KiB) of the image written from memory by the runtime. */
  pages: number
  ms: number
}
