/**
 * The previous image of an incremental save (DESIGN §5): the image the saving process runs
 * from, or one it wrote and holds open. Reached through the process's /proc entries — never
 * by path, since the session loop replaces the file at the path with every save — and used
 * only when its manifest is intact, of the same original runtime and of the generation the
 * runtime names. The planner then tells the runtime, per planned write, where the previous
 * image holds the same addresses; the runtime copies the pages it knows to be clean from
 * there (reflink or copy_file_range) and writes the rest. Anything doubtful: a full save.
 */
import type {ManifestSegment} from './manifest.js'
import {readElfImageOrExe, type OpenedExecutable, type OriginalExecutable} from './original-executable.js'
import type {PlannedWrite, SaveRequest} from './save-types.js'

export interface PreviousChoice {
  /** Segments of the previous image that hold memory (data, heap, regions), or null: full save. */
  segments: ManifestSegment[] | null
  /** Why the save is full (from the runtime, or the planner's reason for refusing the previous image). */
  why?: string
}

function previousPath(req: SaveRequest): string | null {
  const p = req.previous
  if (!p || req.pid === undefined) return null
  return p.source === 'exe' ? `/proc/${req.pid}/exe` : `/proc/${req.pid}/fd/${p.fd}`
}

export function choosePrevious(req: SaveRequest, original: OriginalExecutable): PreviousChoice {
  const path = previousPath(req)
  if (!path || !req.previous) return {segments: null, why: req.tracking?.why}
  let image: OpenedExecutable
  try {
    image = readElfImageOrExe(path)
  } catch (err) {
    return {segments: null, why: `the previous image cannot be read (${(err as Error).message})`}
  }
  try {
    const {found, src} = image
    if (!found) return {segments: null, why: 'the previous image has no manifest'}
    const m = found.manifest
    if (m.generation !== req.previous.generation) {
      return {segments: null, why: `the previous image is generation ${m.generation}, the runtime expected ${req.previous.generation}`}
    }
    if (!Buffer.from(m.runtimeDigest).equals(original.digest)) {
      return {segments: null, why: 'the previous image is of another runtime executable'}
    }
    const segments = m.segments.filter((s) => s.role !== 'reservation' && s.fileOffset + s.fileSize <= src.size)
    return {segments}
  } catch (err) {
    return {segments: null, why: `the previous image is damaged (${(err as Error).message})`}
  } finally {
    image.close()
  }
}

/** Set `prev`/`prevLen` of each write that starts inside a segment of the previous image. */
export function assignPrevious(writes: PlannedWrite[], segments: readonly ManifestSegment[]): void {
  for (const w of writes) {
    const s = segments.find((x) => w.addr >= x.address && w.addr < x.address + x.fileSize)
    if (!s) continue
    w.prev = s.fileOffset + (w.addr - s.address)
    const left = s.address + s.fileSize - w.addr
    w.prevLen = left < w.size ? left : w.size
  }
}
