/**
 * LC_DYLD_CHAINED_FIXUPS payload (<mach-o/fixup-chains.h>): header, starts_in_image (one
 * offset per segment, 0 = no fixups) and one starts_in_segment per segment with fixups.
 * Imports and symbol strings are carried as bytes. `layoutChainedFixups` recomputes every
 * offset the way ld64.lld does (8-byte aligned pieces), so after an edit the blob is re-laid
 * out and seg_count stays equal to the number of segments.
 */
import {ChainedFixupsHeader, ChainedStartsInSegment, DYLD_CHAINED_PTR_START_MULTI} from './definitions.js'
import {MachoError} from './errors.js'
import {alignUpN} from '../binary/align.js'
import {type StructValue, decodeStruct, encodeStruct} from '../binary/field-table.js'

type StartsFields = StructValue<typeof ChainedStartsInSegment>
export interface SegmentStarts {
  /** offset of this record from starts_in_image (as stored) */
  infoOffset: number
  f: StartsFields
  pageStarts: number[]
  /** bytes after page_start[] inside `size` (chain_starts of 32-bit formats, or padding) */
  tail: Buffer
}
export interface ChainedFixups {
  header: StructValue<typeof ChainedFixupsHeader>
  /** one entry per segment; null = the segment has no fixups */
  segments: (SegmentStarts | null)[]
  imports: Buffer
  /** symbol strings through the end of the blob (includes trailing alignment) */
  symbols: Buffer
}

const bad = (why: string, offset: number, value?: number): MachoError =>
  new MachoError('parse', 'MACHO_BAD_FIXUPS', `chained fixups: ${why}`, {offset, value})

export function readChainedFixups(blob: Buffer, maxSegments = 256): ChainedFixups {
  const header = decodeStruct(ChainedFixupsHeader, blob, 0)
  const {starts_offset: so, imports_offset: io, symbols_offset: sym} = header
  if (!(so + 4 <= blob.length && so <= io && io <= sym && sym <= blob.length)) throw bad('offsets out of order or outside the blob', 4, so)
  const segCount = blob.readUInt32LE(so)
  if (segCount > maxSegments || so + 4 + 4 * segCount > io) throw bad(`seg_count ${segCount} does not fit`, so, segCount)
  const segments: (SegmentStarts | null)[] = []
  for (let i = 0; i < segCount; i++) {
    const infoOffset = blob.readUInt32LE(so + 4 + 4 * i)
    if (infoOffset === 0) { segments.push(null); continue }
    const at = so + infoOffset
    if (at + ChainedStartsInSegment.size > io) throw bad(`segment ${i} starts outside the starts area`, so + 4 + 4 * i, infoOffset)
    const f = decodeStruct(ChainedStartsInSegment, blob, at)
    const pagesEnd = at + ChainedStartsInSegment.size + 2 * f.page_count
    if (f.size < pagesEnd - at || at + f.size > io) throw bad(`segment ${i} size ${f.size} inconsistent with ${f.page_count} pages`, at, f.size)
    const pageStarts = Array.from({length: f.page_count}, (_, p) => blob.readUInt16LE(at + ChainedStartsInSegment.size + 2 * p))
    segments.push({infoOffset, f, pageStarts, tail: Buffer.from(blob.subarray(pagesEnd, at + f.size))})
  }
  return {header, segments, imports: Buffer.from(blob.subarray(io, sym)), symbols: Buffer.from(blob.subarray(sym))}
}

/** Serialise at the offsets stored in the model. */
export function writeChainedFixups(c: ChainedFixups): Buffer {
  const size = c.header.symbols_offset + c.symbols.length
  const out = Buffer.alloc(size)
  encodeStruct(ChainedFixupsHeader, c.header, out, 0)
  const so = c.header.starts_offset
  out.writeUInt32LE(c.segments.length, so)
  c.segments.forEach((s, i) => {
    out.writeUInt32LE(s ? s.infoOffset : 0, so + 4 + 4 * i)
    if (!s) return
    const at = so + s.infoOffset
    if (s.f.page_count !== s.pageStarts.length) throw new MachoError('write', 'MACHO_BAD_FIXUPS', `segment ${i}: page_count ${s.f.page_count} but ${s.pageStarts.length} page starts`)
    encodeStruct(ChainedStartsInSegment, s.f, out, at)
    s.pageStarts.forEach((p, k) => out.writeUInt16LE(p, at + ChainedStartsInSegment.size + 2 * k))
    s.tail.copy(out, at + ChainedStartsInSegment.size + 2 * s.pageStarts.length)
  })
  c.imports.copy(out, c.header.imports_offset)
  c.symbols.copy(out, c.header.symbols_offset)
  return out
}

/** Recompute offsets and sizes like ld64.lld's ChainedFixupsSection (8-byte aligned pieces). */
export function layoutChainedFixups(c: ChainedFixups): void {
  const starts = alignUpN(ChainedFixupsHeader.size, 8)
  let cursor = alignUpN(4 + 4 * c.segments.length, 8)
  for (const s of c.segments) {
    if (!s) continue
    if (s.pageStarts.some(p => p !== 0xffff && (p & DYLD_CHAINED_PTR_START_MULTI))) {
      throw new MachoError('edit', 'MACHO_UNSUPPORTED', 'chained fixups with multi-start pages (32-bit formats) are not supported')
    }
    s.f.page_count = s.pageStarts.length
    const raw = ChainedStartsInSegment.size + 2 * s.pageStarts.length
    s.f.size = alignUpN(raw, 8)
    s.tail = Buffer.alloc(s.f.size - raw)
    s.infoOffset = cursor
    cursor += s.f.size
  }
  c.header.starts_offset = starts
  c.header.imports_offset = starts + cursor
  c.header.symbols_offset = c.header.imports_offset + c.imports.length
}
