/**
 * Walk every chunk of a heap from the first chunk to the top chunk (docs/heap-layout.md):
 * chunks tile the range exactly, each boundary tag's PINUSE bit agrees with the previous
 * chunk, free chunks carry a footer. Any violation is a typed parse error with the chunk's
 * heap offset; the walk never reads outside the source.
 */
import {ImgdumpError} from '../errors.js'
import {CHUNK_FLAG_MASK, CHUNK_FLAGS, CHUNK_MIN, CHUNK_OVERHEAD} from './definitions.js'
import type {HeapHeader} from './reader.js'
import type {HeapSource} from './source.js'

export type ChunkState = 'used' | 'free' | 'quick'

export interface Chunk {
  /** Address of the chunk's boundary tag. */
  address: bigint
  /** Chunk size including the tag. */
  size: bigint
  state: ChunkState
  /** Address of the payload (what malloc returned for a used chunk). */
  payload: bigint
  /** Bytes usable from the payload (malloc_usable_size). */
  usable: bigint
}

export interface HeapSummary {
  chunks: number
  used: number
  usedBytes: bigint
  free: number
  freeBytes: bigint
  quick: number
  quickBytes: bigint
  topBytes: bigint
}

function corrupt(code: string, message: string, src: HeapSource, addr: bigint, value: bigint): ImgdumpError {
  return new ImgdumpError('parse', code, message, {offset: addr - src.base, value: `0x${value.toString(16)}`})
}

function head(src: HeapSource, addr: bigint): bigint {
  const b = src.read(addr + 8n, 8)
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)
}

function prevSizeOf(src: HeapSource, addr: bigint): bigint {
  const b = src.read(addr, 8)
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true)
}

export function* walkChunks(src: HeapSource, header: HeapHeader): Generator<Chunk> {
  const top = header.alloc.top
  let addr = header.alloc.firstChunk
  let prevInUse = true
  while (addr < top) {
    const h = head(src, addr)
    const size = h & ~CHUNK_FLAG_MASK
    const inuse = (h & CHUNK_FLAGS.CINUSE) !== 0n
    const quick = (h & CHUNK_FLAGS.QUICK) !== 0n
    if (size < CHUNK_MIN || addr + size > top) throw corrupt('HEAP_CHUNK_SIZE', `chunk at 0x${addr.toString(16)} has size ${size}`, src, addr, h)
    if (((h & CHUNK_FLAGS.PINUSE) !== 0n) !== prevInUse) {
      throw corrupt('HEAP_CHUNK_PINUSE', `chunk at 0x${addr.toString(16)} disagrees with its predecessor's state`, src, addr, h)
    }
    if (quick && !inuse) throw corrupt('HEAP_CHUNK_FLAGS', `quick chunk at 0x${addr.toString(16)} not marked in use`, src, addr, h)
    if (!inuse && prevSizeOf(src, addr + size) !== size) {
      throw corrupt('HEAP_CHUNK_FOOTER', `free chunk at 0x${addr.toString(16)} has no matching footer`, src, addr + size, prevSizeOf(src, addr + size))
    }
    yield {address: addr, size, state: quick ? 'quick' : inuse ? 'used' : 'free', payload: addr + 16n, usable: size - CHUNK_OVERHEAD}
    prevInUse = inuse
    addr += size
  }
  if (addr !== top) throw corrupt('HEAP_CHUNK_END', 'the chunks do not end at the top chunk', src, addr, top)
  const th = head(src, top)
  if (((th & CHUNK_FLAGS.PINUSE) !== 0n) !== prevInUse) throw corrupt('HEAP_TOP_PINUSE', 'the top chunk disagrees with the last chunk', src, top, th)
}

export function summarize(src: HeapSource, header: HeapHeader): HeapSummary {
  const s: HeapSummary = {chunks: 0, used: 0, usedBytes: 0n, free: 0, freeBytes: 0n, quick: 0, quickBytes: 0n, topBytes: header.committed - header.alloc.top}
  for (const c of walkChunks(src, header)) {
    s.chunks++
    if (c.state === 'used') s.used++, s.usedBytes += c.size
    else if (c.state === 'free') s.free++, s.freeBytes += c.size
    else s.quick++, s.quickBytes += c.size
  }
  return s
}
