/**
 * Which file the planner reads as the saving process's executable. Never the path: the
 * session loop replaces the file a process runs from with every save to the same path (and
 * `mv`, a rebuild or a package upgrade replace it too), so a path names whatever is there
 * *now*. `/proc/PID/exe` opened names the inode the process runs, deleted or not (proc(5)).
 * It is used only when its link text is the `exe` the runtime reported, so that a message
 * naming another process (or a peer that only simulates a runtime) cannot make the planner
 * read some unrelated program; otherwise the reported path is read as before.
 */
import fs from 'node:fs'
import type {SaveRequest} from './save-types.js'

/** proc(5): the link text of an unlinked executable ends with this. */
const DELETED = ' (deleted)'

export interface RunningExecutable {
  /** What to open: `/proc/PID/exe` when it is verified to be the reported executable, else the path. */
  open: string
  /** The path to name in messages and record in a manifest (without " (deleted)"). */
  label: string
  /** `open` is /proc/PID/exe: the very file the process runs. */
  viaProc: boolean
}

export function runningExecutable(req: Pick<SaveRequest, 'exe' | 'pid'>): RunningExecutable {
  const label = req.exe.endsWith(DELETED) ? req.exe.slice(0, -DELETED.length) : req.exe
  if (req.pid !== undefined && req.pid > 0) {
    const link = `/proc/${req.pid}/exe`
    try {
      if (fs.readlinkSync(link) === req.exe) return {open: link, label, viaProc: true}
    } catch {
      // No such process, or not ours to read: fall back to the path.
    }
  }
  return {open: label, label, viaProc: false}
}
