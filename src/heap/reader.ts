/**
 * Read and validate the heap header and the allocator state from a HeapSource
 * (docs/heap-layout.md). Normalised into a HeapHeader; every field the walk relies on is
 * checked, and violations are typed parse errors carrying the heap offset and the value.
 */
import {decodeStruct} from '../binary/field-table.js'
import {ImgdumpError} from '../errors.js'
import {
  ALLOC_BINS_OFFSET, ALLOC_LOCATION_OFFSET, ALLOC_QUICK_OFFSET, ALLOC_STATE_SIZE, ALLOC_STATE_VERSION,
  AllocLocation, AllocStateFixed, type AllocStateValue, HEADER_TABLES, HEAP_HEADER_STRUCT_SIZE,
  HEAP_LAYOUT_VERSION, HEAP_MAGIC, HeapHeaderFixed, type HeapHeaderFixedValue, N_BINS, N_QUICK,
} from './definitions.js'
import type {HeapSource} from './source.js'

export interface HeapHeader extends HeapHeaderFixedValue {
  roots: bigint[]
  onSave: {fn: bigint; arg: bigint}[]
  onRestore: {fn: bigint; arg: bigint}[]
  externs: {value: bigint; symbol: bigint; name?: string}[]
  regions: {addr: bigint; len: bigint}[]
  allocStateOffset: bigint
  alloc: AllocStateValue
  quick: bigint[]
  bins: bigint[]
}

function bad(code: string, message: string, offset: bigint, value: bigint | number): ImgdumpError {
  return new ImgdumpError('parse', code, message, {offset, value: typeof value === 'bigint' ? `0x${value.toString(16)}` : value})
}

function u64s(src: HeapSource, addr: bigint, count: number): bigint[] {
  const b = src.read(addr, count * 8)
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  return Array.from({length: count}, (_, i) => v.getBigUint64(i * 8, true))
}

function table<T>(src: HeapSource, base: bigint, t: {offset: number; count: number}, n: number, decode: (b: Uint8Array, at: number) => T): T[] {
  const b = src.read(base + BigInt(t.offset), t.count * 16)
  return Array.from({length: Math.min(n, t.count)}, (_, i) => decode(b, i * 16))
}

/** A NUL-terminated string at addr inside the heap, or undefined if it is not readable. */
function cString(src: HeapSource, addr: bigint): string | undefined {
  const end = src.base + src.length
  if (addr < src.base || addr >= end) return undefined
  const span = end - addr < 4096n ? Number(end - addr) : 4096
  const b = src.read(addr, span)
  const z = b.indexOf(0)
  return z < 0 ? undefined : Buffer.from(b.subarray(0, z)).toString('latin1')
}

function checkFixed(h: HeapHeaderFixedValue, src: HeapSource): void {
  if (h.magic !== HEAP_MAGIC) throw bad('HEAP_MAGIC', 'no IDMPHEAP magic at the heap base', 0n, h.magic)
  if (h.layoutVersion !== HEAP_LAYOUT_VERSION) {
    throw bad('HEAP_VERSION', `heap layout version ${h.layoutVersion}, this imgdump reads ${HEAP_LAYOUT_VERSION}`, 8n, h.layoutVersion)
  }
  if (h.base !== src.base) throw bad('HEAP_BASE', `header says base 0x${h.base.toString(16)}, found at 0x${src.base.toString(16)}`, 16n, h.base)
  if (h.headerSize < HEAP_HEADER_STRUCT_SIZE || h.headerSize % 4096 !== 0) throw bad('HEAP_HEADER_SIZE', `bad header size ${h.headerSize}`, 12n, h.headerSize)
  if (h.brk < h.base + BigInt(h.headerSize) + 16n || h.brk > h.base + h.reserve || h.brk > h.committed) {
    throw bad('HEAP_BRK', `break 0x${h.brk.toString(16)} outside the heap`, 32n, h.brk)
  }
  if (h.brk > src.base + src.length) throw bad('HEAP_TRUNCATED', `break 0x${h.brk.toString(16)} beyond the ${src.length} bytes available`, 32n, h.brk)
}

export function readHeapHeader(src: HeapSource): HeapHeader {
  const fixed = decodeStruct(HeapHeaderFixed, src.read(src.base, HeapHeaderFixed.size), 0)
  checkFixed(fixed, src)
  const base = src.base
  const loc = decodeStruct(AllocLocation, src.read(base + BigInt(ALLOC_LOCATION_OFFSET), AllocLocation.size), 0)
  if (loc.allocStateOffset < BigInt(HEAP_HEADER_STRUCT_SIZE) || loc.allocStateOffset + BigInt(ALLOC_STATE_SIZE) > BigInt(fixed.headerSize) ||
      loc.allocStateSize !== BigInt(ALLOC_STATE_SIZE)) {
    throw bad('HEAP_ALLOC_STATE', `allocator state at offset ${loc.allocStateOffset} size ${loc.allocStateSize}`, BigInt(ALLOC_LOCATION_OFFSET), loc.allocStateOffset)
  }
  const stAddr = base + loc.allocStateOffset
  const alloc = decodeStruct(AllocStateFixed, src.read(stAddr, AllocStateFixed.size), 0)
  if (alloc.version !== ALLOC_STATE_VERSION) throw bad('HEAP_ALLOC_VERSION', `allocator state version ${alloc.version}`, loc.allocStateOffset, alloc.version)
  if (alloc.firstChunk !== base + BigInt(fixed.headerSize)) throw bad('HEAP_FIRST_CHUNK', 'first chunk is not right after the header', loc.allocStateOffset + 8n, alloc.firstChunk)
  if (alloc.top + 16n !== fixed.brk) throw bad('HEAP_TOP', `top chunk 0x${alloc.top.toString(16)} does not end at the break`, loc.allocStateOffset + 16n, alloc.top)
  const pair = (b: Uint8Array, at: number) => {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
    return [v.getBigUint64(at, true), v.getBigUint64(at + 8, true)] as const
  }
  const externs = table(src, base, HEADER_TABLES.externs, fixed.nExterns, (b, at) => {
    const [value, symbol] = pair(b, at)
    return {value, symbol, name: cString(src, symbol)}
  })
  return {
    ...fixed,
    roots: u64s(src, base + BigInt(HEADER_TABLES.roots.offset), HEADER_TABLES.roots.count),
    onSave: table(src, base, HEADER_TABLES.onSave, fixed.nOnSave, (b, at) => { const [fn, arg] = pair(b, at); return {fn, arg} }),
    onRestore: table(src, base, HEADER_TABLES.onRestore, fixed.nOnRestore, (b, at) => { const [fn, arg] = pair(b, at); return {fn, arg} }),
    externs,
    regions: table(src, base, HEADER_TABLES.regions, fixed.nRegions, (b, at) => { const [addr, len] = pair(b, at); return {addr, len} }),
    allocStateOffset: loc.allocStateOffset,
    alloc,
    quick: u64s(src, stAddr + BigInt(ALLOC_QUICK_OFFSET), N_QUICK),
    bins: u64s(src, stAddr + BigInt(ALLOC_BINS_OFFSET), N_BINS),
  }
}
