/**
 * koffi bindings to the few libc calls the CLI needs that Node does not expose:
 * personality (pinning the address layout), execve (restore takes over this process),
 * getpid. Loaded lazily so commands that never exec do not pay for koffi.
 * koffi is called synchronously on the main thread only (DESIGN §6).
 */
import {createRequire} from 'node:module'
import {ImgdumpError} from '../errors.js'

const require = createRequire(import.meta.url)

/** personality(2) flag: disable address-space randomisation for the next exec. */
export const ADDR_NO_RANDOMIZE = 0x0040000
/** personality(2) query value: return the current persona without changing it. */
export const PERSONALITY_QUERY = 0xffffffff

interface LibcFunctions {
  personality: (persona: number) => number
  execve: (path: string, argv: (string | null)[], envp: (string | null)[]) => number
  getpid: () => number
  errno: () => number
  strerror: (errnum: number) => string
  fcntl: (fd: number, cmd: number, arg: number) => number
  signal: (sig: number, handler: number) => number
  sigprocmask: (how: number, set: Buffer, old: Buffer | null) => number
  getrlimit: (resource: number, out: Buffer) => number
  setrlimit: (resource: number, limit: Buffer) => number
}

type Koffi = typeof import('koffi')
export interface LoadedLibc {
  koffi: Koffi
  lib: ReturnType<Koffi['load']>
  errno: () => number
  strerror: (errnum: number) => string
}

let loaded: LoadedLibc | undefined

/**
 * The C library, loaded once for every binding module (this one, socket.ts, linkat.ts), with
 * the two calls all of them need to report a failure.
 */
export function loadLibc(): LoadedLibc {
  if (loaded) return loaded
  if (process.platform !== 'linux') {
    throw new ImgdumpError('compat', 'UNSUPPORTED_PLATFORM', `libc bindings are only available on Linux, not ${process.platform}`)
  }
  const koffi = require('koffi') as Koffi
  const lib = koffi.load('libc.so.6')
  loaded = {koffi, lib, errno: () => koffi.errno(), strerror: lib.func('const char *strerror(int errnum)')}
  return loaded
}

let cached: LibcFunctions | undefined

export function libc(): LibcFunctions {
  if (cached) return cached
  const {lib, errno, strerror} = loadLibc()
  cached = {
    // personality takes an unsigned long; 0xffffffff queries (see personality(2)).
    personality: lib.func('int personality(unsigned long persona)'),
    execve: lib.func('int execve(const char *path, const char **argv, const char **envp)'),
    getpid: lib.func('int getpid(void)'),
    errno,
    strerror,
    // fcntl is variadic in C; every call we make passes one int argument.
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
    // signal() with SIG_DFL (0) only: the handler is passed as an integer.
    signal: lib.func('intptr_t signal(int sig, intptr_t handler)'),
    sigprocmask: lib.func('int sigprocmask(int how, const uint8_t *set, _Out_ uint8_t *old)'),
    getrlimit: lib.func('int getrlimit(int resource, _Out_ uint8_t *rlim)'),
    setrlimit: lib.func('int setrlimit(int resource, const uint8_t *rlim)'),
  }
  return cached
}

/** The calling process's personality flags. */
export function currentPersonality(): number {
  return libc().personality(PERSONALITY_QUERY)
}

/**
 * Set the personality for this process (inherited across execve). Throws a compat error
 * when the kernel or a seccomp profile denies it (containers' default profile does).
 */
export function setPersonality(persona: number): void {
  const l = libc()
  if (l.personality(persona) === -1) {
    const errno = l.errno()
    throw new ImgdumpError('compat', 'PERSONALITY_DENIED',
      `personality(0x${persona.toString(16)}) was denied: ${l.strerror(errno)}`, {
        hint: 'the address layout cannot be pinned; under Docker/Podman allow the personality syscall (e.g. --security-opt seccomp=unconfined)',
      })
  }
}

/**
 * Replace this process with `path`. Returns only on failure, as a typed error. The caller
 * must have prepared the process for it (stdio blocking and drained, close-on-exec cleared
 * on fds 0-2, signals reset): no exit handlers run at execve.
 */
export function execve(path: string, argv: string[], env: NodeJS.ProcessEnv): never {
  const l = libc()
  const envp = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`)
  l.execve(path, [...argv, null], [...envp, null])
  const errno = l.errno()
  throw new ImgdumpError('io', 'EXEC_FAILED', `cannot execute ${path}: ${l.strerror(errno)}`, {value: errno})
}
