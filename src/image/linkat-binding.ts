/**
 * linkat(2) through koffi: Node has no way to give an O_TMPFILE file a name. Loaded lazily,
 * called synchronously on the main thread only (DESIGN §6).
 */
import {createRequire} from 'node:module'

const require = createRequire(import.meta.url)
const AT_FDCWD = -100
/** Follow /proc/self/fd/N to the open file (linkat(2): "linking an O_TMPFILE file"). */
const AT_SYMLINK_FOLLOW = 0x400

interface Bindings {
  linkat: (olddirfd: number, oldpath: string, newdirfd: number, newpath: string, flags: number) => number
  errno: () => number
  strerror: (e: number) => string
}
let cached: Bindings | undefined

function bindings(): Bindings {
  if (cached) return cached
  const koffi = require('koffi') as typeof import('koffi')
  const lib = koffi.load('libc.so.6')
  cached = {
    linkat: lib.func('int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags)'),
    errno: () => koffi.errno(),
    strerror: lib.func('const char *strerror(int errnum)'),
  }
  return cached
}

/** Give the open file `fd` the name `path`; throws an Error with `code` like Node's on failure. */
export function linkOpenFile(fd: number, path: string): void {
  const b = bindings()
  if (b.linkat(AT_FDCWD, `/proc/self/fd/${fd}`, AT_FDCWD, path, AT_SYMLINK_FOLLOW) === 0) return
  const errno = b.errno()
  const names: Record<number, string> = {1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 17: 'EEXIST', 18: 'EXDEV', 28: 'ENOSPC', 30: 'EROFS'}
  const err = new Error(`linkat ${path}: ${b.strerror(errno)}`) as NodeJS.ErrnoException
  err.code = names[errno] ?? `E${errno}`
  err.errno = errno
  throw err
}
