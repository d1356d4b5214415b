/**
 * koffi bindings to libimgdump.so for tests and benches: allocate and free from the
 * library's heap, see the heap's bytes, call the writer and the CRC. Loading the library
 * into Node does not replace Node's malloc (it was bound before): these functions reach
 * libimgdump's allocator explicitly through the library handle. Set IMGDUMP_HEAP_BASE /
 * IMGDUMP_HEAP_SIZE in the environment before the process starts: the library reads the
 * initial environment (/proc/self/environ) at its first allocation.
 */
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'
import {ImgdumpError} from '../errors.js'
import {bufferSource} from '../heap/source.js'
import {readHeapHeader, type HeapHeader} from '../heap/reader.js'

const require = createRequire(import.meta.url)

/** native/build/libimgdump.so of this package (same relative path from src/ and dist/). */
export const LIBIMGDUMP_SO = fileURLToPath(new URL('../../native/build/libimgdump.so', import.meta.url))

/** An opaque pointer as koffi returns it. */
export type Pointer = unknown

export interface WriteRange {
  addr: bigint
  size: bigint
  offset: bigint
}

export interface Libimgdump {
  malloc(n: number): Pointer
  calloc(n: number, m: number): Pointer
  realloc(p: Pointer, n: number): Pointer
  memalign(align: number, n: number): Pointer
  free(p: Pointer): void
  usableSize(p: Pointer): number
  /** Address of a pointer as a bigint (0n for NULL). */
  address(p: Pointer): bigint
  /** The live bytes of `p` (length n) — writes go to the heap. */
  bytes(p: Pointer, n: number): Uint8Array
  /** Heap header pointer (initialises the heap), null if it could not be reserved. */
  heap(): Pointer
  /** The heap's bytes [base, base+len) as a Buffer view of the live memory. */
  heapBytes(len: number): Buffer
  /** The live heap header, parsed by src/heap (this thread's cache flushed first). */
  readHeader(): HeapHeader
  crc32c(crc: number, data: Uint8Array): number
  writeRanges(fd: number, ranges: WriteRange[], generation: bigint): {rc: number; crcs: number[]; written: bigint}
  /** imgdump__heap_walk without a callback: 0 or a negative code. */
  checkHeap(): number
  /** imgdump__alloc_lock / unlock, as a save brackets its writes (flushes this thread's cache). */
  lock(): void
  unlock(): void
}

let cached: Libimgdump | undefined

export function libimgdump(path: string = LIBIMGDUMP_SO): Libimgdump {
  if (cached) return cached
  if (process.platform !== 'linux') {
    throw new ImgdumpError('compat', 'UNSUPPORTED_PLATFORM', `libimgdump bindings are only available on Linux, not ${process.platform}`)
  }
  const koffi = require('koffi') as typeof import('koffi')
  const lib = koffi.load(path)
  // native/src/internal.h struct imgdump_write; prev = UINT64_MAX: no previous image (a full write).
  const WriteStruct = koffi.struct('imgdump_write', {addr: 'uint64_t', size: 'uint64_t', offset: 'uint64_t', prev: 'uint64_t', prev_len: 'uint64_t'})
  const f = {
    malloc: lib.func('void *malloc(size_t n)'),
    calloc: lib.func('void *calloc(size_t n, size_t m)'),
    realloc: lib.func('void *realloc(void *p, size_t n)'),
    memalign: lib.func('void *memalign(size_t align, size_t n)'),
    free: lib.func('void free(void *p)'),
    usable: lib.func('size_t malloc_usable_size(void *p)'),
    heap: lib.func('void *imgdump__heap(void)'),
    crc: lib.func('uint32_t imgdump__crc32c(uint32_t crc, const uint8_t *p, size_t n)'),
    write: lib.func('int imgdump__write_ranges(int fd, const imgdump_write *w, size_t n, _Out_ uint32_t *crc, uint64_t gen, unsigned int flags, _Out_ uint64_t *written)'),
    walk: lib.func('int imgdump__heap_walk(void *fn, void *arg)'),
    lock: lib.func('void imgdump__alloc_lock(void)'),
    unlock: lib.func('void imgdump__alloc_unlock(void)'),
  }
  const address = (p: Pointer): bigint => (p === null ? 0n : BigInt(koffi.address(p)))
  cached = {
    malloc: (n) => f.malloc(n),
    calloc: (n, m) => f.calloc(n, m),
    realloc: (p, n) => f.realloc(p, n),
    memalign: (a, n) => f.memalign(a, n),
    free: (p) => f.free(p),
    usableSize: (p) => Number(f.usable(p)),
    address,
    bytes: (p, n) => new Uint8Array(koffi.view(p, n)),
    heap: () => f.heap(),
    heapBytes: (len) => Buffer.from(koffi.view(f.heap(), len)),
    readHeader() {
      f.lock() // flushes this thread's cache: the break and counters are then final
      f.unlock()
      const fixed = Buffer.from(koffi.view(f.heap(), 64))
      const base = fixed.readBigUInt64LE(16)
      const brk = fixed.readBigUInt64LE(32)
      return readHeapHeader(bufferSource(Buffer.from(koffi.view(f.heap(), Number(brk - base))), base))
    },
    crc32c: (crc, data) => f.crc(crc, data, data.length) >>> 0,
    writeRanges(fd, ranges, generation) {
      const crcs = new Uint32Array(Math.max(1, ranges.length))
      const written = new BigUint64Array(1)
      const full = ranges.map((r) => ({...r, prev: 0xffffffffffffffffn, prev_len: 0n}))
      const rc = f.write(fd, full, ranges.length, crcs, generation, 0, written) as number
      return {rc, crcs: Array.from(crcs.subarray(0, ranges.length)), written: written[0]}
    },
    checkHeap: () => f.walk(null, null) as number,
    lock: () => f.lock(),
    unlock: () => f.unlock(),
  }
  void WriteStruct
  return cached
}
