/**
 * Walk every chunk of a heap from the first chunk to the top chunk (docs/heap-layout.md):
 * chunks tile the range exactly, each boundary tag's PINUSE bit agrees with the previous
 * chunk, free chunks carry a footer. Any violation is a typed parse error with the chunk's
 * heap offset; the walk never reads outside the source.
 *
 * The stepping works on plain numbers (heap offsets < 2^53) over the source's blocks, with
 * no allocation per chunk: a heap of small chunks walks at tens of millions of chunks per
 * second. Addresses become bigints only where a Chunk object is handed out.
 */
import {ImgdumpError} from '../errors.js'
import {CHUNK_FLAG_BITS, CHUNK_FLAGS, CHUNK_MIN, CHUNK_OVERHEAD, ChunkHeader} from './definitions.js'
import {offsetOf} from '../binary/field-table.js'
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

const {PINUSE, CINUSE, QUICK} = CHUNK_FLAGS
/** Where a chunk's size|flags word sits in its boundary tag. */
const HEAD = offsetOf(ChunkHeader, 'head')
const STATES: readonly ChunkState[] = ['used', 'free', 'quick']

/** Steps through the chunks; after next() returns true, offset/size/state describe one. */
export class ChunkCursor {
  /** Heap offset (from base) of the current chunk. */
  offset = 0
  size = 0
  /** 0 used, 1 free, 2 quick. */
  state = 0
  private next_: number
  private readonly top: number
  private prevInUse = true
  private view: DataView = new DataView(new ArrayBuffer(0))
  private bstart = 0
  private bend = 0

  constructor(private readonly src: HeapSource, header: HeapHeader) {
    this.next_ = Number(header.alloc.firstChunk - src.base)
    this.top = Number(header.alloc.top - src.base)
  }

  /** The 64-bit word at heap offset o, as a number (heads and sizes are < 2^53). */
  private word(o: number): number {
    if (o < this.bstart || o + 8 > this.bend) {
      const b = this.src.block(o, 8)
      this.view = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength)
      this.bstart = b.start
      this.bend = b.start + b.bytes.byteLength
    }
    const at = o - this.bstart
    return this.view.getUint32(at + 4, true) * 4294967296 + this.view.getUint32(at, true)
  }

  private corrupt(code: string, message: string, o: number, value: number): ImgdumpError {
    return new ImgdumpError('parse', code, message, {offset: o, value: `0x${value.toString(16)}`})
  }

  private hex(o: number): string {
    return `0x${(this.src.base + BigInt(o)).toString(16)}`
  }

  next(): boolean {
    const o = this.next_
    if (o >= this.top) {
      if (o !== this.top) throw this.corrupt('HEAP_CHUNK_END', 'the chunks do not end at the top chunk', o, this.top)
      const th = this.word(o + HEAD)
      if (((th & PINUSE) !== 0) !== this.prevInUse) throw this.corrupt('HEAP_TOP_PINUSE', 'the top chunk disagrees with the last chunk', o, th)
      return false
    }
    const h = this.word(o + HEAD)
    const flags = h % CHUNK_FLAG_BITS
    const size = h - flags
    const inuse = (flags & CINUSE) !== 0
    const quick = (flags & QUICK) !== 0
    if (size < Number(CHUNK_MIN) || o + size > this.top) throw this.corrupt('HEAP_CHUNK_SIZE', `chunk at ${this.hex(o)} has size ${size}`, o, h)
    if (((flags & PINUSE) !== 0) !== this.prevInUse) {
      throw this.corrupt('HEAP_CHUNK_PINUSE', `chunk at ${this.hex(o)} disagrees with its predecessor's state`, o, h)
    }
    if (quick && !inuse) throw this.corrupt('HEAP_CHUNK_FLAGS', `quick chunk at ${this.hex(o)} not marked in use`, o, h)
    if (!inuse) {
      const footer = this.word(o + size)
      if (footer !== size) throw this.corrupt('HEAP_CHUNK_FOOTER', `free chunk at ${this.hex(o)} has no matching footer`, o + size, footer)
    }
    this.offset = o
    this.size = size
    this.state = quick ? 2 : inuse ? 0 : 1
    this.prevInUse = inuse
    this.next_ = o + size
    return true
  }
}

export function* walkChunks(src: HeapSource, header: HeapHeader): Generator<Chunk> {
  const cur = new ChunkCursor(src, header)
  while (cur.next()) {
    const address = src.base + BigInt(cur.offset)
    const size = BigInt(cur.size)
    yield {address, size, state: STATES[cur.state], payload: address + 16n, usable: size - CHUNK_OVERHEAD}
  }
}

export function summarize(src: HeapSource, header: HeapHeader): HeapSummary {
  const cur = new ChunkCursor(src, header)
  const n = [0, 0, 0]
  const bytes = [0, 0, 0]
  while (cur.next()) {
    n[cur.state]++
    bytes[cur.state] += cur.size
  }
  return {
    chunks: n[0] + n[1] + n[2],
    used: n[0], usedBytes: BigInt(bytes[0]),
    free: n[1], freeBytes: BigInt(bytes[1]),
    quick: n[2], quickBytes: BigInt(bytes[2]),
    topBytes: header.committed - header.alloc.top,
  }
}
