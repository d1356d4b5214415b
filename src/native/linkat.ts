/**
 * linkat(2) through koffi: Node has no way to give an O_TMPFILE file a name. Loaded lazily,
 * called synchronously on the main thread only (DESIGN §6).
 */
import {constants as osConstants} from 'node:os'
import {loadLibc} from './libc.js'

const AT_FDCWD = -100
/** Follow /proc/self/fd/N to the open file (linkat(2): "linking an O_TMPFILE file"). */
const AT_SYMLINK_FOLLOW = 0x400

let linkat: ((olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number) | undefined

/** Give the open file `fd` the name `path`; throws an Error with `code` like Node's on failure. */
export function linkOpenFile(fd: number, path: string): void {
  const c = loadLibc()
  linkat ??= c.lib.func('int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)')
  if (linkat(AT_FDCWD, `/proc/self/fd/${fd}`, AT_FDCWD, path, AT_SYMLINK_FOLLOW) === 0) return
  const errno = c.errno()
  const err = new Error(`linkat ${path}: ${c.strerror(errno)}`) as NodeJS.ErrnoException
  err.code = Object.entries(osConstants.errno).find(([, n]) => n === errno)?.[0] ?? `E${errno}`
  err.errno = errno
  throw err
}
