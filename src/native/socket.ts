/**
 * koffi bindings for what Node's net module cannot do on a Unix socket: create a raw
 * socketpair, and send or receive a file descriptor as SCM_RIGHTS ancillary data
 * (docs/protocol.md: the output fd travels with the `plan` line). Also poll(2) so that a
 * send on a non-blocking fd (libuv makes every fd it wraps non-blocking) can wait.
 *
 * Loaded lazily: koffi is required on first use, so `plan-save` starts fast.
 * koffi is called synchronously on the main thread only (DESIGN §6).
 */
import {ImgdumpError} from '../errors.js'
import {loadLibc} from './libc.js'

/** Constants of <sys/socket.h>, <fcntl.h>, <poll.h>; equal on Linux x86-64 and aarch64. */
export const AF_UNIX = 1
export const SOCK_STREAM = 1
export const SOCK_CLOEXEC = 0o2000000
export const SOL_SOCKET = 1
export const SCM_RIGHTS = 1
export const MSG_DONTWAIT = 0x40
export const MSG_NOSIGNAL = 0x4000
export const MSG_CMSG_CLOEXEC = 0x40000000
const POLLIN = 0x1
const POLLOUT = 0x4
const EINTR = 4
const EAGAIN = 11

/**
 * The C structures, declared once. Linux LP64 (x86-64 and aarch64 share them):
 *   struct iovec   { void *iov_base; size_t iov_len; }                         16 bytes
 *   struct msghdr  { void *msg_name; socklen_t msg_namelen; (pad 4)
 *                    struct iovec *msg_iov; size_t msg_iovlen;
 *                    void *msg_control; size_t msg_controllen; int msg_flags; (pad 4) } 56 bytes
 *   struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; unsigned char data[]; }
 * cmsghdr is written by hand into the control buffer (its data is variable-length):
 * CMSG_LEN(n) = 16 + n, CMSG_SPACE(n) = 16 + align8(n).
 */
const CMSG_HEADER = {len: 0, level: 8, type: 12, data: 16, size: 16} as const
const cmsgSpace = (n: number) => CMSG_HEADER.size + ((n + 7) & ~7)

interface SocketFunctions {
  socketpair: (domain: number, type: number, protocol: number, sv: Int32Array) => number
  sendmsg: (fd: number, msg: unknown, flags: number) => number
  recvmsg: (fd: number, msg: unknown, flags: number) => number
  poll: (fds: Buffer, n: number, timeout: number) => number
  fcntl: (fd: number, cmd: number, arg: number) => number
  close: (fd: number) => number
  errno: () => number
  strerror: (e: number) => string
}

let cached: SocketFunctions | undefined

function sock(): SocketFunctions {
  if (cached) return cached
  const {koffi, lib, errno, strerror} = loadLibc()
  // Buffers passed as `void *` members are used in place for the duration of the call.
  const iovec = koffi.struct('imgdump_iovec', {iov_base: 'void *', iov_len: 'size_t'})
  const msghdr = koffi.struct('imgdump_msghdr', {
    msg_name: 'void *',
    msg_namelen: 'uint32_t',
    msg_iov: koffi.pointer(iovec),
    msg_iovlen: 'size_t',
    msg_control: 'void *',
    msg_controllen: 'size_t',
    msg_flags: 'int',
  })
  if (koffi.sizeof(msghdr) !== 56 || koffi.sizeof(iovec) !== 16) {
    throw new ImgdumpError('internal', 'ABI_MISMATCH', `unexpected struct msghdr size ${koffi.sizeof(msghdr)}`)
  }
  cached = {
    socketpair: lib.func('int socketpair(int domain, int type, int protocol, _Out_ int32_t *sv)'),
    sendmsg: lib.func('intptr_t sendmsg(int fd, const imgdump_msghdr *msg, int flags)'),
    recvmsg: lib.func('intptr_t recvmsg(int fd, _Inout_ imgdump_msghdr *msg, int flags)'),
    poll: lib.func('int poll(_Inout_ uint8_t *fds, unsigned long n, int timeout)'),
    fcntl: lib.func('int fcntl(int fd, int cmd, int arg)'),
    close: lib.func('int close(int fd)'),
    errno,
    strerror,
  }
  return cached
}

function sysError(call: string, code = 'SOCKET_ERROR'): ImgdumpError {
  const s = sock()
  const e = s.errno()
  return new ImgdumpError('io', code, `${call} failed: ${s.strerror(e)}`, {value: e})
}

/** socketpair(AF_UNIX, SOCK_STREAM[|SOCK_CLOEXEC]); returns both descriptors. */
export function socketPair(cloexec = true): [number, number] {
  const sv = new Int32Array(2)
  if (sock().socketpair(AF_UNIX, SOCK_STREAM | (cloexec ? SOCK_CLOEXEC : 0), 0, sv) !== 0) throw sysError('socketpair')
  return [sv[0], sv[1]]
}


export function closeFd(fd: number): void {
  sock().close(fd)
}

/** Wait until `fd` is readable (events = POLLIN) or writable (POLLOUT); false on timeout. */
export function pollFd(fd: number, writable: boolean, timeoutMs: number): boolean {
  const s = sock()
  // struct pollfd { int fd; short events; short revents; }
  const pfd = Buffer.alloc(8)
  pfd.writeInt32LE(fd, 0)
  pfd.writeInt16LE(writable ? POLLOUT : POLLIN, 4)
  for (;;) {
    const r = s.poll(pfd, 1, timeoutMs)
    if (r >= 0) return r > 0
    if (s.errno() !== EINTR) throw sysError('poll')
  }
}

/**
 * Send all of `data` on the stream socket `fd`, with `passFd` (if given) as SCM_RIGHTS
 * attached to the first byte. Works on blocking and non-blocking descriptors: on EAGAIN
 * waits for writability (up to `timeoutMs` per stall). MSG_NOSIGNAL: a closed peer gives
 * EPIPE, not a SIGPIPE death.
 */
export function sendAll(fd: number, data: Buffer, passFd: number | null = null, timeoutMs = 30_000): void {
  const s = sock()
  let off = 0
  let control: Buffer | null = null
  if (passFd !== null) {
    control = Buffer.alloc(cmsgSpace(4))
    control.writeBigUInt64LE(BigInt(CMSG_HEADER.size + 4), CMSG_HEADER.len)
    control.writeInt32LE(SOL_SOCKET, CMSG_HEADER.level)
    control.writeInt32LE(SCM_RIGHTS, CMSG_HEADER.type)
    control.writeInt32LE(passFd, CMSG_HEADER.data)
  }
  while (off < data.length || control) {
    const chunk = data.subarray(off)
    const msg = {
      msg_name: null, msg_namelen: 0,
      msg_iov: [{iov_base: chunk, iov_len: chunk.length}], msg_iovlen: 1,
      msg_control: control, msg_controllen: control ? control.length : 0, msg_flags: 0,
    }
    const n = Number(s.sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT))
    if (n < 0) {
      const e = s.errno()
      if (e === EINTR) continue
      if (e === EAGAIN) {
        if (!pollFd(fd, true, timeoutMs)) {
          throw new ImgdumpError('session', 'PROTO_SEND_TIMEOUT', `the peer did not read for ${timeoutMs} ms`)
        }
        continue
      }
      throw sysError('sendmsg', 'PROTO_SEND_FAILED')
    }
    // The descriptor went with the first byte that was accepted.
    control = null
    off += n
  }
}

export interface Received {
  data: Buffer
  /** Descriptors received with these bytes (SCM_RIGHTS), already close-on-exec. */
  fds: number[]
}

/** One recvmsg (blocking unless the fd is non-blocking): up to `max` bytes plus any fds. */
export function recvWithFds(fd: number, max = 65536): Received {
  const s = sock()
  const buf = Buffer.alloc(max)
  const control = Buffer.alloc(cmsgSpace(4 * 16))
  for (;;) {
    const msg = {
      msg_name: null, msg_namelen: 0,
      msg_iov: [{iov_base: buf, iov_len: buf.length}], msg_iovlen: 1,
      msg_control: control, msg_controllen: control.length, msg_flags: 0,
    }
    const n = Number(s.recvmsg(fd, msg, MSG_CMSG_CLOEXEC))
    if (n < 0) {
      if (s.errno() === EINTR) continue
      throw sysError('recvmsg')
    }
    return {data: Buffer.from(buf.subarray(0, n)), fds: parseRights(control, Number(msg.msg_controllen))}
  }
}

/** Walk the cmsghdr list of a received control buffer and collect SCM_RIGHTS descriptors. */
function parseRights(control: Buffer, len: number): number[] {
  const fds: number[] = []
  let off = 0
  while (off + CMSG_HEADER.size <= len) {
    const cmsgLen = Number(control.readBigUInt64LE(off + CMSG_HEADER.len))
    if (cmsgLen < CMSG_HEADER.size || off + cmsgLen > len) break
    if (control.readInt32LE(off + CMSG_HEADER.level) === SOL_SOCKET &&
        control.readInt32LE(off + CMSG_HEADER.type) === SCM_RIGHTS) {
      for (let p = off + CMSG_HEADER.data; p + 4 <= off + cmsgLen; p += 4) fds.push(control.readInt32LE(p))
    }
    off += (cmsgLen + 7) & ~7
  }
  return fds
}
