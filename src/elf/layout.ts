/**
 * Layout: where every byte of the output comes from. The writer (writer.ts) and the image
 * planner both consume this list: pieces are sorted, contiguous from offset 0 to `size`
 * (gaps are explicit zero 'padding' pieces), and each says what fills it. Pieces of kind
 * 'external' are filled by someone else (the planner's payload writer).
 */
import {DynamicDef, ElfHeaderDef, ProgramHeaderDef, RelaDef, SectionHeaderDef, SymbolDef} from './definitions.js'
import {encodeStruct, encodeStructs} from '../binary/field-table.js'
import type {ByteReader} from './byte-source.js'
import type {Content, ElfFile} from './model.js'

export type PieceKind = 'elf-header' | 'program-headers' | 'section-headers' | 'note' | Content['kind'] | 'padding'

export interface LayoutPiece {
  readonly offset: bigint
  readonly length: bigint
  readonly kind: PieceKind
  /** What fills it: a section name, 'ELF header', an external range's label, … */
  readonly source: string
  /** The piece's bytes before patches (zeros for 'external' and 'padding'). */
  render(): Uint8Array
}

export interface ElfLayout {
  readonly pieces: readonly LayoutPiece[]
  /** Size of the output file. */
  readonly size: bigint
}

const cache = new WeakMap<ElfFile, ElfLayout>()

/** Reserve every range of the output (first phase of writing). Throws on overlap: a bug in an edit. */
export function layoutElf(elf: ElfFile): ElfLayout {
  // Models are immutable, so a model's layout (and each piece's rendering) is computed once.
  let layout = cache.get(elf)
  if (!layout) cache.set(elf, layout = computeLayout(elf))
  return layout
}

function computeLayout(elf: ElfFile): ElfLayout {
  const raw: LayoutPiece[] = [
    piece(0n, BigInt(ElfHeaderDef.size), 'elf-header', 'ELF header', () => {
      const b = new Uint8Array(ElfHeaderDef.size)
      encodeStruct(ElfHeaderDef, elf.header, b, 0)
      return b
    }),
  ]
  if (elf.programHeaders.length > 0) {
    raw.push(piece(elf.header.e_phoff, BigInt(elf.programHeaders.length * ProgramHeaderDef.size), 'program-headers', 'program header table',
      () => encodeStructs(ProgramHeaderDef, elf.programHeaders)))
  }
  if (elf.sectionHeaderCount > 0) {
    raw.push(piece(elf.header.e_shoff, BigInt(elf.sectionHeaderCount * SectionHeaderDef.size), 'section-headers', 'section header table',
      () => encodeStructs(SectionHeaderDef, elf.sections.map((s) => s.header))))
  }
  for (const c of elf.contents) raw.push(contentPiece(c))
  for (const n of elf.tail?.notes ?? []) {
    const ph = elf.programHeaders[n.noteIndex]
    raw.push(piece(ph.p_offset, BigInt(n.bytes.length), 'note', 'added note', () => n.bytes))
  }
  raw.sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0))
  const pieces: LayoutPiece[] = []
  let cursor = 0n
  for (const p of raw) {
    if (p.length === 0n) continue
    if (p.offset < cursor) throw new Error(`layout: ${p.source} at 0x${p.offset.toString(16)} overlaps the previous piece (ends 0x${cursor.toString(16)})`)
    if (p.offset > cursor) pieces.push(padding(cursor, p.offset - cursor))
    pieces.push(p)
    cursor = p.offset + p.length
  }
  return {pieces, size: cursor}
}

function piece(offset: bigint, length: bigint, kind: PieceKind, source: string, render: () => Uint8Array): LayoutPiece {
  let bytes: Uint8Array | undefined
  return {offset, length, kind, source, render: () => (bytes ??= render())}
}

function padding(offset: bigint, length: bigint): LayoutPiece {
  return piece(offset, length, 'padding', 'zero padding', () => new Uint8Array(Number(length)))
}

function contentPiece(c: Content): LayoutPiece {
  switch (c.kind) {
    case 'opaque': return piece(c.offset, BigInt(c.bytes.length), c.kind, c.label, () => c.bytes)
    case 'external': return piece(c.offset, c.length, c.kind, c.label, () => new Uint8Array(Number(c.length)))
    case 'symbols': return piece(c.offset, BigInt(c.entries.length * SymbolDef.size), c.kind, c.label, () => encodeStructs(SymbolDef, c.entries))
    case 'dynamic': return piece(c.offset, BigInt(c.entries.length * DynamicDef.size), c.kind, c.label, () => encodeStructs(DynamicDef, c.entries))
    case 'rela': return piece(c.offset, BigInt(c.entries.length * RelaDef.size), c.kind, c.label, () => encodeStructs(RelaDef, c.entries))
  }
}

/** End of the pieces that are not part of the moved tail (where appended data may start). */
export function contentEnd(elf: ElfFile): bigint {
  let end = 64n
  const tailIdx = elf.tail?.loadIndex
  if (elf.programHeaders.length > 0 && tailIdx === undefined) end = max(end, elf.header.e_phoff + BigInt(elf.programHeaders.length * ProgramHeaderDef.size))
  if (elf.sectionHeaderCount > 0) end = max(end, elf.header.e_shoff + BigInt(elf.sectionHeaderCount * SectionHeaderDef.size))
  for (const c of elf.contents) end = max(end, c.offset + (c.kind === 'external' ? c.length : c.kind === 'opaque' ? BigInt(c.bytes.length) : BigInt(c.entries.length * (c.kind === 'dynamic' ? 16 : 24))))
  return end
}

/**
 * The bytes of the output at [offset, offset + length) with patches applied (external
 * ranges read as zeros). Used by the views (symbols, dynamic, notes, relocations) so they
 * see edits, and to record undo entries.
 */
export function readBytes(elf: ElfFile, offset: bigint, length: bigint, layout: ElfLayout = layoutElf(elf)): Uint8Array {
  const out = new Uint8Array(Number(length))
  const end = offset + length
  for (const p of layout.pieces) {
    const pe = p.offset + p.length
    if (pe <= offset || p.offset >= end || p.kind === 'padding' || p.kind === 'external') continue
    const from = max(offset, p.offset)
    const to = pe < end ? pe : end
    out.set(p.render().subarray(Number(from - p.offset), Number(to - p.offset)), Number(from - offset))
  }
  applyPatches(elf, offset, out)
  return out
}

/** readBytes as a ByteReader, for the decoders the model shares with the scanner (scan.ts). */
export function modelReader(elf: ElfFile): ByteReader {
  const layout = layoutElf(elf)
  return {read: (offset, length) => readBytes(elf, offset, BigInt(length), layout)}
}

/** Write the patches that overlap [offset, offset + bytes.length) into `bytes`. */
export function applyPatches(elf: ElfFile, offset: bigint, bytes: Uint8Array): void {
  const end = offset + BigInt(bytes.length)
  for (const p of elf.patches) {
    const pe = p.offset + BigInt(p.bytes.length)
    if (pe <= offset || p.offset >= end) continue
    const from = max(offset, p.offset)
    const to = pe < end ? pe : end
    bytes.set(p.bytes.subarray(Number(from - p.offset), Number(to - p.offset)), Number(from - offset))
  }
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b
}
