/**
 * Where heap bytes come from: a Buffer holding [base, base+length), or a file (an image)
 * that holds them at some file offset, or any reader callback. Reads are by address and
 * bounds-checked; a file source reads through a window so a chunk walk over a large heap
 * costs few system calls (DESIGN §8: inspect ≥ 1 GB/s).
 */
import {closeSync, openSync, readSync} from 'node:fs'
import {ImgdumpError} from '../errors.js'

export interface HeapSource {
  /** Address of the first byte available (the heap header's address). */
  readonly base: bigint
  /** Number of bytes available from base. */
  readonly length: bigint
  /** `len` bytes at address `addr`; throws a parse error when out of range. */
  read(addr: bigint, len: number): Uint8Array
  /**
   * A block of bytes covering heap offsets [offset, offset+len) (offsets from base, as
   * numbers: heaps are < 2^53 bytes): `bytes[0]` is at heap offset `start` <= offset. Lets a
   * walk step through a large heap without a read call per chunk.
   */
  block(offset: number, len: number): {bytes: Uint8Array; start: number}
  close(): void
}

function outOfRange(addr: bigint, len: number, base: bigint, length: bigint): ImgdumpError {
  return new ImgdumpError('parse', 'HEAP_OUT_OF_RANGE',
    `heap read of ${len} bytes at 0x${addr.toString(16)} is outside [0x${base.toString(16)}, 0x${(base + length).toString(16)})`,
    {value: `0x${addr.toString(16)}`, offset: addr - base})
}

function check(addr: bigint, len: number, base: bigint, length: bigint): void {
  if (len < 0 || addr < base || addr + BigInt(len) > base + length) throw outOfRange(addr, len, base, length)
}

/** Heap bytes in memory: buf[0] is at address `base`. */
export function bufferSource(buf: Uint8Array, base: bigint): HeapSource {
  const length = BigInt(buf.length)
  return {
    base, length,
    read(addr, len) {
      check(addr, len, base, length)
      const at = Number(addr - base)
      return buf.subarray(at, at + len)
    },
    block(offset, len) {
      check(base + BigInt(offset), len, base, length)
      return {bytes: buf, start: 0}
    },
    close() {},
  }
}

/** A reader callback: fetch `len` bytes at heap offset `offset` (may return fewer at EOF). */
export type ReadAt = (offset: bigint, len: number) => Uint8Array

const WINDOW = 1 << 20

/** Heap bytes through a reader: [base, base+length) read at heap offsets, windowed. */
export function readerSource(readAt: ReadAt, base: bigint, length: bigint, close: () => void = () => {}): HeapSource {
  let winStart = -1
  let win: Uint8Array = new Uint8Array(0)
  /** Make the window cover heap offsets [off, off+len); the caller has bounds-checked. */
  const cover = (off: number, len: number) => {
    if (winStart >= 0 && off >= winStart && off + len <= winStart + win.length) return
    const want = Math.max(len, WINDOW)
    const avail = Number(length) - off
    winStart = off
    win = readAt(BigInt(off), Math.min(avail, want))
    if (win.length < len) {
      throw new ImgdumpError('parse', 'HEAP_TRUNCATED', `the heap image ends before 0x${(base + BigInt(off + len)).toString(16)}`,
        {offset: off, value: `0x${(base + BigInt(off)).toString(16)}`})
    }
  }
  return {
    base, length,
    read(addr, len) {
      check(addr, len, base, length)
      const off = Number(addr - base)
      cover(off, len)
      const at = off - winStart
      return win.subarray(at, at + len)
    },
    block(offset, len) {
      check(base + BigInt(offset), len, base, length)
      cover(offset, len)
      return {bytes: win, start: winStart}
    },
    close,
  }
}

/** Heap bytes inside an open file: address `base` is at byte `fileOffset`, `length` bytes; close() leaves fd open. */
export function fdHeapSource(fd: number, fileOffset: bigint, base: bigint, length: bigint, close: () => void = () => {}): HeapSource {
  const readAt: ReadAt = (off, len) => {
    const buf = Buffer.alloc(len)
    let got = 0
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, fileOffset + off + BigInt(got))
      if (n === 0) break
      got += n
    }
    return buf.subarray(0, got)
  }
  return readerSource(readAt, base, length, close)
}

/** Heap bytes inside a file: address `base` is at byte `fileOffset`, `length` bytes. */
export function fileSource(path: string, fileOffset: bigint, base: bigint, length: bigint): HeapSource {
  const fd = openSync(path, 'r')
  return fdHeapSource(fd, fileOffset, base, length, () => closeSync(fd))
}
