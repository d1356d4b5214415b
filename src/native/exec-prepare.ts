/**
 * Undo what Node changed in its own process before `execve` hands the process to an image
 * (DESIGN §6): Node marks fds 0-2 close-on-exec, makes piped stdio non-blocking, ignores
 * SIGPIPE, may block signals, and raises RLIMIT_NOFILE. No exit handlers run at execve, so
 * pending stdout/stderr must be flushed here too.
 */
import {libc} from './libc.js'

const F_GETFD = 1
const F_SETFD = 2
const F_GETFL = 3
const F_SETFL = 4
const FD_CLOEXEC = 1
const O_NONBLOCK = 0o4000
const SIGPIPE = 13
const SIG_DFL = 0
const SIG_SETMASK = 2
const RLIMIT_NOFILE = 7
/** The soft open-file limit a login shell starts with; Node raises it to the hard limit. */
const DEFAULT_NOFILE_SOFT = 1024n

export function prepareProcessForExec(): void {
  const l = libc()
  for (const fd of [0, 1, 2]) {
    const fdFlags = l.fcntl(fd, F_GETFD, 0)
    if (fdFlags >= 0 && (fdFlags & FD_CLOEXEC)) l.fcntl(fd, F_SETFD, fdFlags & ~FD_CLOEXEC)
    const flFlags = l.fcntl(fd, F_GETFL, 0)
    if (flFlags >= 0 && (flFlags & O_NONBLOCK)) l.fcntl(fd, F_SETFL, flFlags & ~O_NONBLOCK)
  }
  l.signal(SIGPIPE, SIG_DFL)
  l.sigprocmask(SIG_SETMASK, Buffer.alloc(128), null)
  const lim = Buffer.alloc(16)
  if (l.getrlimit(RLIMIT_NOFILE, lim) === 0) {
    const hard = lim.readBigUInt64LE(8)
    const soft = lim.readBigUInt64LE(0)
    const target = hard < DEFAULT_NOFILE_SOFT ? hard : DEFAULT_NOFILE_SOFT
    if (soft > target) {
      lim.writeBigUInt64LE(target, 0)
      l.setrlimit(RLIMIT_NOFILE, lim)
    }
  }
}

