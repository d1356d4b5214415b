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
  /** The runtime's process id (absent from older runtimes): the planner reads /proc/PID/exe. */
  pid?: number
  /** How the runtime knows its written pages, and why a save is full (absent: full, unknown). */
  tracking?: {method: TrackingMethod; why?: string}
  /** The previous image the runtime can copy clean pages from (incremental save), or absent. */
  previous?: PreviousImage
}

/** none: full save; pagemap: pages of the image file still mapped are clean; uffd: write-protect tracking. */
export type TrackingMethod = 'none' | 'pagemap' | 'uffd'

export interface PreviousImage {
  /** exe: the image the process runs from (/proc/PID/exe); fd: an image it wrote, held open as descriptor `fd`. */
  source: 'exe' | 'fd'
  fd: number
  /** Generation recorded in that image. */
  generation: bigint
}

/** One range of the runtime's memory that the runtime itself copies into the output. */
export interface PlannedWrite {
  addr: bigint
  size: bigint
  offset: bigint
  /** Incremental saves: where the previous image holds these bytes, and how many of them (from addr on). */
  prev?: bigint
  prevLen?: bigint
}

/** What an incremental save took from its previous image (absent: a full save). */
export interface SaveIncrement {
  tracking: TrackingMethod
  /** Why the save was full, when it was. */
  why?: string
  previousGeneration?: bigint
  /** Pages of memory ranges written from memory, and taken from the previous image. */
  pagesWritten: number
  pagesFromPrevious: number
  /** Of those: shared extents (reflink) and in-kernel copies (copy_file_range). */
  reflinked: number
  copied: number
  /** All-zero pages left as holes (neither written nor copied). */
  holes: number
  /** Per planned write: pages taken from the previous image (for the manifest's segment records). */
  fromPrevious?: number[]
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
  /** Set when no previous image is used: why the save writes every page. */
  fullBecause?: string
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
  /** How much of the save came from the previous image. */
  increment?: SaveIncrement
}

/** What the runtime reported in `written` beyond the CRCs (protocol v1 additions). */
export interface WrittenFacts {
  tracking?: TrackingMethod
  /** Per planned write: pages taken from the previous image. */
  fromPrevious?: number[]
  reflinked?: number
  copied?: number
  holes?: number
}
