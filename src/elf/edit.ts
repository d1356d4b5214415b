/**
 * Editing operations: pure functions ElfFile → ElfFile. Each appends to the model's undo log
 * what it changed inside the original file, so the original can be rebuilt byte for byte
 * (DESIGN §5). Program headers can only be added once the table was moved to the tail
 * (its old place is followed by other bytes); the tail is re-placed after every edit.
 */
import {DT, ElfHeaderDef, MAX_PHNUM, PF, PT, ProgramHeaderDef, R_NONE, SectionHeaderDef, type ElfHeader, type ProgramHeader, type SectionHeader} from './definitions.js'
import {editError} from './errors.js'
import {encodeStruct, encodeStructs} from '../binary/field-table.js'
import {contentEnd, layoutElf, readBytes} from './layout.js'
import {machinePageSize, type Content, type ElfFile, type TailSegment, type UndoEntry} from './model.js'
import {encodeNote} from './notes.js'
import {readDynamic} from './dynamic.js'
import {encodeRelr, readDynamicRelocations, type Relocation} from './relocations.js'
import {alignUp} from '../binary/align.js'


/**
 * Move the program header table to a new read-only PT_LOAD at the end of the file, above
 * every other segment in memory (Linux ≥ 5.18 derives AT_PHDR from the PT_LOAD covering
 * e_phoff; ld.so derives the load bias from PT_PHDR, which is updated). The old table's bytes
 * stay where they were. Idempotent.
 */
export function moveProgramHeaders(elf: ElfFile): ElfFile {
  if (elf.tail) return elf
  const oldTable: Content = {kind: 'opaque', offset: elf.header.e_phoff, label: 'original program header table',
    bytes: encodeStructs(ProgramHeaderDef, elf.programHeaders)}
  const page = machinePageSize(elf)
  const load: ProgramHeader = {p_type: PT.PT_LOAD, p_flags: PF.PF_R, p_offset: 0n, p_vaddr: 0n, p_paddr: 0n, p_filesz: 0n, p_memsz: 0n, p_align: page}
  const at = lastLoadIndex(elf.programHeaders) + 1
  const phdrs = [...elf.programHeaders]
  phdrs.splice(at, 0, load)
  const contents = elf.programHeaders.length > 0 ? insertContent(elf.contents, oldTable) : elf.contents
  const moved: ElfFile = {...elf, programHeaders: phdrs, contents, undo: [...elf.undo, headerUndo(elf)], tail: {loadIndex: at, notes: [], pageSize: page}}
  return placeTail(moved)
}

export interface AddLoadOptions {
  readonly vaddr: bigint
  /** File offset of the segment's bytes (appendExternal / appendBytes give one). */
  readonly offset: bigint
  readonly filesz: bigint
  /** ≥ filesz; the rest is zero-filled by the kernel. */
  readonly memsz: bigint
  /** PF_* bits; default PF_R | PF_W. */
  readonly flags?: number
  /** Default: the page size. Keep it at the page size for PIEs (DESIGN §5: 2 MiB rounds the load bias). */
  readonly align?: bigint
}

/** Add a PT_LOAD (kept sorted by p_vaddr, below the tail). Needs moveProgramHeaders first. */
export function addLoad(elf: ElfFile, o: AddLoadOptions): {elf: ElfFile; index: number} {
  const tail = requireTail(elf, 'addLoad')
  const align = o.align ?? tail.pageSize
  if (o.filesz > o.memsz) throw editError('ELF_BAD_EDIT', `addLoad: filesz 0x${o.filesz.toString(16)} > memsz 0x${o.memsz.toString(16)}`, o.filesz)
  if (o.memsz === 0n) throw editError('ELF_BAD_EDIT', 'addLoad: empty segment', o.memsz)
  const flags = o.flags ?? (PF.PF_R | PF.PF_W)
  if (o.memsz > o.filesz && (flags & PF.PF_W) === 0 && (o.vaddr + o.filesz) % tail.pageSize !== 0n) {
    // The kernel zeroes the rest of the last file page only when it can write it (elf_load →
    // padzero, whose failure is ignored for read-only mappings): the bytes that follow in the
    // file would show through instead of zeros.
    throw editError('ELF_BAD_EDIT', 'addLoad: p_memsz > p_filesz in a read-only segment whose file bytes end inside a page', flags,
      'make the segment writable, or end its file bytes on a page boundary')
  }
  checkCongruent(o.vaddr, o.offset, align, 'addLoad')
  if (o.offset + o.filesz > contentEnd(elf)) {
    throw editError('ELF_BAD_EDIT', `addLoad: file range 0x${o.offset.toString(16)}+0x${o.filesz.toString(16)} is beyond the file's content`, o.offset,
      'reserve it first with appendExternal or appendBytes')
  }
  elf.programHeaders.forEach((p, i) => {
    if (p.p_type !== PT.PT_LOAD || i === tail.loadIndex) return
    const pEnd = alignUp(p.p_vaddr + p.p_memsz, tail.pageSize)
    if (o.vaddr < pEnd && p.p_vaddr - (p.p_vaddr % tail.pageSize) < o.vaddr + o.memsz) {
      throw editError('ELF_OVERLAPPING_LOAD', `addLoad: 0x${o.vaddr.toString(16)}+0x${o.memsz.toString(16)} overlaps the pages of program header ${i}`, o.vaddr)
    }
  })
  const ph: ProgramHeader = {p_type: PT.PT_LOAD, p_flags: flags, p_offset: o.offset, p_vaddr: o.vaddr, p_paddr: o.vaddr,
    p_filesz: o.filesz, p_memsz: o.memsz, p_align: align}
  let at = tail.loadIndex
  for (let i = 0; i < tail.loadIndex; i++) {
    const p = elf.programHeaders[i]
    if (p.p_type === PT.PT_LOAD && p.p_vaddr > o.vaddr) { at = i; break }
  }
  const next = placeTail(insertProgramHeader(elf, ph, at))
  return {elf: next, index: at}
}

/** Add a PT_NOTE over an existing file range that a PT_LOAD maps (so the note is in memory). */
export function addNoteSegment(elf: ElfFile, o: {offset: bigint; size: bigint; align?: bigint}): {elf: ElfFile; index: number} {
  requireTail(elf, 'addNoteSegment')
  const load = elf.programHeaders.find((p) => p.p_type === PT.PT_LOAD && o.offset >= p.p_offset && o.offset + o.size <= p.p_offset + p.p_filesz)
  if (!load) throw editError('ELF_NOT_LOADED', `addNoteSegment: 0x${o.offset.toString(16)}+0x${o.size.toString(16)} is not inside any PT_LOAD`, o.offset)
  const vaddr = load.p_vaddr + (o.offset - load.p_offset)
  const ph: ProgramHeader = {p_type: PT.PT_NOTE, p_flags: PF.PF_R, p_offset: o.offset, p_vaddr: vaddr, p_paddr: vaddr, p_filesz: o.size, p_memsz: o.size, p_align: o.align ?? 4n}
  const at = elf.programHeaders.length
  return {elf: placeTail(insertProgramHeader(elf, ph, at)), index: at}
}

/** Add a note (name, type, desc) in the tail segment, after the program header table, with its PT_NOTE. */
export function addNote(elf: ElfFile, o: {name: string; type: number; desc: Uint8Array}): {elf: ElfFile; index: number} {
  const tail = requireTail(elf, 'addNote')
  const bytes = encodeNote(o.name, o.type, o.desc)
  const ph: ProgramHeader = {p_type: PT.PT_NOTE, p_flags: PF.PF_R, p_offset: 0n, p_vaddr: 0n, p_paddr: 0n, p_filesz: BigInt(bytes.length), p_memsz: BigInt(bytes.length), p_align: 4n}
  const at = elf.programHeaders.length
  const inserted = insertProgramHeader(elf, ph, at)
  const withNote: ElfFile = {...inserted, tail: {...inserted.tail!, notes: [...tail.notes, {bytes, noteIndex: at}]}}
  return {elf: placeTail(withNote), index: at}
}

/** Re-point PT_LOAD `index` at other file bytes (same p_vaddr). */
export function repointLoad(elf: ElfFile, index: number, o: {offset: bigint; filesz: bigint; memsz?: bigint}): ElfFile {
  const p = elf.programHeaders[index]
  if (!p || p.p_type !== PT.PT_LOAD || index === elf.tail?.loadIndex) throw editError('ELF_NOT_A_LOAD', `repointLoad: program header ${index} is not a PT_LOAD of the file`, index)
  const memsz = o.memsz ?? p.p_memsz
  if (o.filesz > memsz) throw editError('ELF_BAD_EDIT', `repointLoad: filesz 0x${o.filesz.toString(16)} > memsz 0x${memsz.toString(16)}`, o.filesz)
  checkCongruent(p.p_vaddr, o.offset, p.p_align, 'repointLoad')
  if (o.offset + o.filesz > contentEnd(elf)) throw editError('ELF_BAD_EDIT', `repointLoad: file range 0x${o.offset.toString(16)}+0x${o.filesz.toString(16)} is beyond the file's content`, o.offset)
  const next = {...p, p_offset: o.offset, p_filesz: o.filesz, p_memsz: memsz}
  return placeTail(replaceProgramHeader(elf, index, next))
}

/**
 * Reserve `length` bytes at the end of the file that someone else fills (layout kind
 * 'external'). With `vaddr`, the offset is congruent to it modulo `align` (default the page
 * size; pass 2 MiB for huge-page-friendly payloads).
 */
export function appendExternal(elf: ElfFile, o: {length: bigint; vaddr?: bigint; align?: bigint; label?: string}): {elf: ElfFile; offset: bigint} {
  const offset = nextOffset(elf, o.vaddr, o.align)
  const c: Content = {kind: 'external', offset, length: o.length, label: o.label ?? 'external'}
  return {elf: placeTail({...elf, contents: insertContent(elf.contents, c)}), offset}
}

/** Append bytes carried in the model (like appendExternal, but the writer writes them). */
export function appendBytes(elf: ElfFile, o: {bytes: Uint8Array; vaddr?: bigint; align?: bigint; label?: string}): {elf: ElfFile; offset: bigint} {
  const offset = nextOffset(elf, o.vaddr, o.align)
  const c: Content = {kind: 'opaque', offset, bytes: o.bytes, label: o.label ?? 'appended'}
  return {elf: placeTail({...elf, contents: insertContent(elf.contents, c)}), offset}
}

/** Overwrite bytes inside the file's contents (not the header tables nor external ranges). */
export function patchBytes(elf: ElfFile, offset: bigint, bytes: Uint8Array, what = 'patch'): ElfFile {
  const end = offset + BigInt(bytes.length)
  const layout = layoutElf(elf)
  let covered = offset
  for (const p of layout.pieces) {
    if (p.offset + p.length <= offset || p.offset >= end) continue
    if (p.kind === 'elf-header' || p.kind === 'program-headers' || p.kind === 'section-headers' || p.kind === 'external' || p.kind === 'note' || p.kind === 'padding') {
      throw editError('ELF_PATCH_OUTSIDE_CONTENT', `${what}: 0x${offset.toString(16)}+${bytes.length} overlaps the ${p.source}`, offset)
    }
    covered = p.offset + p.length
  }
  if (covered < end) throw editError('ELF_PATCH_OUTSIDE_CONTENT', `${what}: 0x${offset.toString(16)}+${bytes.length} runs past the end of the file`, offset)
  const original = readBytes(elf, offset, BigInt(bytes.length), layout)
  return {...elf, patches: [...elf.patches, {offset, bytes: Uint8Array.from(bytes)}], undo: [...elf.undo, {offset, original, what}]}
}

/** Rewrite a dynamic relocation to R_*_NONE (r_info = 0); r_offset and r_addend are kept. */
export function neutraliseRelocation(elf: ElfFile, r: Relocation): ElfFile {
  if (r.type === R_NONE) return elf
  return patchBytes(elf, r.fileOffset + 8n, new Uint8Array(8), `${r.table}[${r.index}] ${r.typeName} → NONE`)
}

/**
 * Remove addresses from the packed DT_RELR table (those taken from memory must not be
 * relocated again): the rest is re-encoded in place and DT_RELRSZ shrunk. Refused if the
 * re-encoding would not fit (never seen: dropping addresses does not lengthen greedy runs).
 */
export function dropRelrAddresses(elf: ElfFile, drop: (address: bigint) => boolean): ElfFile {
  const {relr, relrRange} = readDynamicRelocations(elf)
  if (!relrRange) return elf
  const kept = relr.filter((a) => !drop(a))
  if (kept.length === relr.length) return elf
  const words = encodeRelr(kept)
  const size = BigInt(words.length * 8)
  if (size > relrRange.size) throw editError('ELF_BAD_EDIT', `DT_RELR re-encoded needs ${size} bytes, the table has ${relrRange.size}`, size)
  const bytes = new Uint8Array(Number(relrRange.size))
  const view = new DataView(bytes.buffer)
  words.forEach((w, i) => view.setBigUint64(i * 8, w, true))
  return setDynamicValue(patchBytes(elf, relrRange.offset, bytes, 'DT_RELR table'), DT.DT_RELRSZ, size)
}

/** Set d_val of the first dynamic entry with `tag` (e.g. DT_RELACOUNT after neutralising RELATIVE entries). */
export function setDynamicValue(elf: ElfFile, tag: number, value: bigint): ElfFile {
  const e = readDynamic(elf)?.entries.find((x) => x.tag === BigInt(tag))
  if (!e) throw editError('ELF_NO_SUCH_DYNAMIC', `the file has no dynamic entry ${tag === DT.DT_RELACOUNT ? 'DT_RELACOUNT' : tag}`, tag)
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, value, true)
  return patchBytes(elf, e.fileOffset + 8n, b, `dynamic tag ${tag}`)
}

/** Change fields of section header `index` (e.g. a section that now describes saved data). */
export function setSectionHeader(elf: ElfFile, index: number, fields: Partial<SectionHeader>): ElfFile {
  const s = elf.sections[index]
  if (!s) throw editError('ELF_BAD_EDIT', `no section ${index}`, index)
  const original = new Uint8Array(SectionHeaderDef.size)
  encodeStruct(SectionHeaderDef, s.header, original, 0)
  const sections = elf.sections.map((x) => (x.index === index ? {...x, header: {...x.header, ...fields}} : x))
  const undo: UndoEntry = {offset: elf.header.e_shoff + BigInt(index * SectionHeaderDef.size), original, what: `section header ${index}`}
  return {...elf, sections, undo: [...elf.undo, undo]}
}

/** Rebuild the original file from an edited output and the undo log (DESIGN §5). */
export function applyUndo(output: Uint8Array, undo: readonly UndoEntry[], originalSize: bigint): Uint8Array {
  const out = output.slice(0, Number(originalSize))
  for (let i = undo.length - 1; i >= 0; i--) {
    const u = undo[i]
    if (u.offset < originalSize) out.set(u.original.subarray(0, Number(originalSize - u.offset)), Number(u.offset))
  }
  return out
}

// --- internals ---------------------------------------------------------------------------

function requireTail(elf: ElfFile, op: string): TailSegment {
  if (!elf.tail) throw editError('ELF_PHDR_NOT_MOVED', `${op}: the program header table has no room to grow`, undefined, 'call moveProgramHeaders first')
  return elf.tail
}

function checkCongruent(vaddr: bigint, offset: bigint, align: bigint, op: string): void {
  if (align > 1n && ((align & (align - 1n)) !== 0n || vaddr % align !== offset % align)) {
    throw editError('ELF_BAD_EDIT', `${op}: vaddr 0x${vaddr.toString(16)} and offset 0x${offset.toString(16)} are not congruent modulo 0x${align.toString(16)}`, offset)
  }
}

function lastLoadIndex(phdrs: readonly ProgramHeader[]): number {
  let last = -1
  phdrs.forEach((p, i) => { if (p.p_type === PT.PT_LOAD) last = i })
  return last
}

function nextOffset(elf: ElfFile, vaddr: bigint | undefined, align: bigint | undefined): bigint {
  const a = align ?? machinePageSize(elf)
  const end = contentEnd(elf)
  if (vaddr === undefined) return alignUp(end, a)
  const base = end - (end % a) + (vaddr % a)
  return base >= end ? base : base + a
}

function insertContent(contents: readonly Content[], c: Content): Content[] {
  const out = [...contents]
  let at = out.findIndex((x) => x.offset > c.offset)
  if (at < 0) at = out.length
  out.splice(at, 0, c)
  return out
}

function headerUndo(elf: ElfFile): UndoEntry {
  const original = new Uint8Array(ElfHeaderDef.size)
  encodeStruct(ElfHeaderDef, elf.header, original, 0)
  return {offset: 0n, original, what: 'ELF header'}
}

function insertProgramHeader(elf: ElfFile, ph: ProgramHeader, at: number): ElfFile {
  const tail = elf.tail!
  if (elf.programHeaders.length + 1 > MAX_PHNUM) {
    throw editError('ELF_TOO_MANY_SEGMENTS', `more than ${MAX_PHNUM} program headers (the kernel reads one page)`, elf.programHeaders.length + 1, 'coalesce adjacent runs into fewer segments')
  }
  const phdrs = [...elf.programHeaders]
  phdrs.splice(at, 0, ph)
  const shift = (i: number): number => (i >= at ? i + 1 : i)
  return {...elf, programHeaders: phdrs, tail: {...tail, loadIndex: shift(tail.loadIndex), notes: tail.notes.map((n) => ({...n, noteIndex: shift(n.noteIndex)}))}}
}

function replaceProgramHeader(elf: ElfFile, index: number, ph: ProgramHeader): ElfFile {
  const phdrs = elf.programHeaders.map((p, i) => (i === index ? ph : p))
  if (elf.tail) return {...elf, programHeaders: phdrs}
  // The table is still in place: this entry of the original file changes.
  const original = new Uint8Array(ProgramHeaderDef.size)
  encodeStruct(ProgramHeaderDef, elf.programHeaders[index], original, 0)
  return {...elf, programHeaders: phdrs, undo: [...elf.undo, {offset: elf.header.e_phoff + BigInt(index * ProgramHeaderDef.size), original, what: `program header ${index}`}]}
}

/**
 * Put the tail (program header table, then added notes) after all other contents, at a
 * virtual address above every other segment and congruent with its offset modulo the page.
 */
function placeTail(elf: ElfFile): ElfFile {
  const tail = elf.tail
  if (!tail) return elf
  const page = tail.pageSize
  const tableOffset = alignUp(contentEnd(elf), 8n)
  const tableSize = BigInt(elf.programHeaders.length * ProgramHeaderDef.size)
  let top = 0n
  elf.programHeaders.forEach((p, i) => {
    if (p.p_type === PT.PT_LOAD && i !== tail.loadIndex && p.p_vaddr + p.p_memsz > top) top = p.p_vaddr + p.p_memsz
  })
  const vaddr = alignUp(top, page) + (tableOffset % page)
  const phdrs = [...elf.programHeaders]
  let cursor = tableOffset + tableSize
  for (const n of tail.notes) {
    cursor = alignUp(cursor, 4n)
    const size = BigInt(n.bytes.length)
    phdrs[n.noteIndex] = {...phdrs[n.noteIndex], p_offset: cursor, p_vaddr: vaddr + (cursor - tableOffset), p_paddr: vaddr + (cursor - tableOffset), p_filesz: size, p_memsz: size}
    cursor += size
  }
  const length = cursor - tableOffset
  phdrs[tail.loadIndex] = {...phdrs[tail.loadIndex], p_offset: tableOffset, p_vaddr: vaddr, p_paddr: vaddr, p_filesz: length, p_memsz: length, p_align: page}
  phdrs.forEach((p, i) => {
    if (p.p_type === PT.PT_PHDR) phdrs[i] = {...p, p_offset: tableOffset, p_vaddr: vaddr, p_paddr: vaddr, p_filesz: tableSize, p_memsz: tableSize}
  })
  const header: ElfHeader = {...elf.header, e_phoff: tableOffset, e_phnum: phdrs.length, e_phentsize: ProgramHeaderDef.size}
  return {...elf, header, programHeaders: phdrs}
}
