/**
 * The output of a save, built in a temporary file in the target directory so that a save
 * that dies leaves nothing behind and the previous image stays intact (DESIGN §5
 * "Atomicity and files"). Preferred: an unnamed O_TMPFILE, named only at commit with linkat.
 * Fallback (filesystems without O_TMPFILE): `.<base>.imgdump-<pid>.tmp`; such temps are
 * removed later only when their owner process is dead.
 */
import fs from 'node:fs'
import path from 'node:path'
import {ImgdumpError, ioError} from '../errors.js'
import type {PendingOutput} from './save-types.js'
import {faultPoint} from './fault-point.js'
import {linkOpenFile} from '../native/linkat.js'
import {processAlive} from '../native/process-alive.js'

/** Linux O_TMPFILE (__O_TMPFILE | O_DIRECTORY), not exported by Node's fs.constants. */
const O_TMPFILE = 0o20000000 | 0o200000
/** Images contain memory: owner only (the process umask may make it stricter). */
const IMAGE_MODE = 0o700
const TEMP_NAME = /^\.(.+)\.imgdump-(\d+)\.tmp$/

export function tempNameFor(target: string, pid = process.pid): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.imgdump-${pid}.tmp`)
}

export interface PendingOutputInfo extends PendingOutput {
  /** 'tmpfile' (unnamed until commit) or 'named' (fallback temp name). */
  readonly kind: 'tmpfile' | 'named'
  /** The fallback temp path (or the link name used at commit for an O_TMPFILE). */
  readonly tempPath: string
}

/**
 * Create the pending output for `target` (an absolute or relative path of the image).
 * `forceNamed` skips O_TMPFILE (tests of the fallback path).
 */
export function createPendingOutput(target: string, options: {forceNamed?: boolean} = {}): PendingOutputInfo {
  const abs = path.resolve(target)
  const dir = path.dirname(abs)
  removeDeadTemps(dir)
  const tempPath = tempNameFor(abs)
  if (!options.forceNamed) {
    try {
      const fd = fs.openSync(dir, fs.constants.O_RDWR | O_TMPFILE, IMAGE_MODE)
      return pending(fd, abs, 'tmpfile', tempPath)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // EOPNOTSUPP / EISDIR / EINVAL: the filesystem or kernel has no O_TMPFILE; anything else is real.
      if (code !== 'EOPNOTSUPP' && code !== 'EISDIR' && code !== 'EINVAL' && code !== 'ENOTSUP') {
        throw ioError(err, dir, 'create the output in')
      }
    }
  }
  try {
    // A stale temp of this very PID can only be a dead earlier process with a reused PID.
    fs.rmSync(tempPath, {force: true})
    const fd = fs.openSync(tempPath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, IMAGE_MODE)
    return pending(fd, abs, 'named', tempPath)
  } catch (err) {
    throw ioError(err, dir, 'create the output in')
  }
}

function pending(fd: number, target: string, kind: 'tmpfile' | 'named', tempPath: string): PendingOutputInfo {
  // Decided once: the runtime was told (plan.flush) whether this output will be fsync'd.
  const sync = durable()
  let open = true
  const close = () => { if (open) { open = false; fs.closeSync(fd) } }
  return {
    fd, target, kind, tempPath, durable: sync,
    commit() {
      if (!open) throw new ImgdumpError('internal', 'OUTPUT_CLOSED', `output for ${target} was already committed or discarded`)
      try {
        if (sync) fs.fsyncSync(fd)
        faultPoint('fsync')
        if (kind === 'tmpfile') {
          fs.rmSync(tempPath, {force: true})
          linkOpenFile(fd, tempPath)
        }
        faultPoint('linked')
        // Closed before the rename: an image must never appear under its name while this
        // process can still write it, or exec'ing it at once fails with ETXTBSY (a planner
        // finishing the save of a runtime that was killed meanwhile raced a new start).
        close()
        fs.renameSync(tempPath, target)
        if (sync) syncDirectory(path.dirname(target))
      } catch (err) {
        close()
        fs.rmSync(tempPath, {force: true})
        throw err instanceof ImgdumpError ? err : ioError(err, target, 'write')
      }
    },
    discard() {
      if (!open) return
      close()
      if (kind === 'named') fs.rmSync(tempPath, {force: true})
    },
  }
}

/**
 * Saves are durable by default: the image and its directory entry are fsync'd before the
 * save is reported done, so a crash never leaves an empty file where the previous image was.
 * IMGDUMP_SYNC=0 skips both (scratch images, benchmarks against tools that do not sync);
 * atomicity is kept either way: readers see the old image or the new one, never a mix.
 */
function durable(): boolean {
  return process.env.IMGDUMP_SYNC !== '0'
}

function syncDirectory(dir: string): void {
  const dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY)
  try { fs.fsyncSync(dfd) } finally { fs.closeSync(dfd) }
}


/** Remove fallback temps in `dir` whose owner PID is no longer running. Returns the names removed. */
export function removeDeadTemps(dir: string): string[] {
  let names: string[]
  try { names = fs.readdirSync(dir) } catch { return [] }
  const removed: string[] = []
  for (const name of names) {
    const m = TEMP_NAME.exec(name)
    if (!m) continue
    const pid = Number(m[2])
    if (pid === process.pid || processAlive(pid)) continue
    try { fs.rmSync(path.join(dir, name), {force: true}); removed.push(name) } catch { /* someone else's race */ }
  }
  return removed
}
