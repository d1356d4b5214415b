/**
 * Reading: bytes → ElfFile. Every read is bounds- and overflow-checked before anything is
 * allocated, so counts and sizes can never make us allocate more than the file holds
 * (the Go debug/elf rule). Validation is the set of rules the kernel and ld.so rely on.
 */
import {
  DynamicDef, ELFCLASS64, ELFDATA2LSB, EM, EV_CURRENT, ElfHeaderDef, PT, ProgramHeaderDef, RelaDef, SHN_XINDEX,
  SHT, SectionHeaderDef, SymbolDef, type ElfHeader, type ProgramHeader, type SectionHeader,
} from './definitions.js'
import {parseError} from './errors.js'
import {decodeStruct, type StructDef} from '../binary/field-table.js'
import type {Content, ElfFile, Section} from './model.js'
import {hex} from '../binary/hex.js'

const U64_MAX = (1n << 64n) - 1n
const MAGIC = [0x7f, 0x45, 0x4c, 0x46]

/** Parse and validate an ELF64 little-endian x86-64 / aarch64 file. Throws ElfError (phase 'parse'). */
export function parseElf(input: Uint8Array): ElfFile {
  const fileSize = BigInt(input.length)
  checkIdent(input)
  const header = decodeStruct(ElfHeaderDef, input, 0)
  checkHeader(header)
  const programHeaders = readProgramHeaders(input, header)
  checkTablesDisjoint(header, 0)
  checkSegments(programHeaders, fileSize)
  const {sections, count} = readSections(input, header)
  return {
    header, programHeaders, sections, sectionHeaderCount: count,
    contents: buildContents(input, header, sections, count),
    patches: [], undo: [], originalSize: fileSize,
  }
}

function checkIdent(b: Uint8Array): void {
  for (let i = 0; i < 4; i++) {
    if (i >= b.length) throw parseError('ELF_TRUNCATED', `file too short for an ELF header (${b.length} bytes)`, b.length)
    if (b[i] !== MAGIC[i]) throw parseError('ELF_BAD_MAGIC', 'not an ELF file (bad magic)', i, b[i])
  }
  if (b.length < 6) throw parseError('ELF_TRUNCATED', `file too short for an ELF header (${b.length} bytes)`, b.length)
  if (b[4] !== ELFCLASS64) throw parseError('ELF_BAD_CLASS', `unsupported ELF class ${b[4]} (only ELF64)`, 4, b[4])
  if (b[5] !== ELFDATA2LSB) throw parseError('ELF_BAD_ENDIAN', `unsupported data encoding ${b[5]} (only little-endian)`, 5, b[5])
  if (b.length < ElfHeaderDef.size) {
    throw parseError('ELF_TRUNCATED', `file too short for an ELF64 header (${b.length} of 64 bytes)`, b.length)
  }
}

function checkHeader(h: ElfHeader): void {
  if (h.ei_version !== EV_CURRENT) throw parseError('ELF_BAD_VERSION', `unsupported ELF version ${h.ei_version}`, 6, h.ei_version)
  if (h.e_machine !== EM.EM_X86_64 && h.e_machine !== EM.EM_AARCH64) {
    throw parseError('ELF_BAD_MACHINE', `unsupported machine ${h.e_machine} (only x86-64 and aarch64)`, 18, h.e_machine)
  }
  if (h.e_version !== EV_CURRENT) throw parseError('ELF_BAD_VERSION', `unsupported e_version ${h.e_version}`, 20, h.e_version)
  if (h.e_ehsize !== ElfHeaderDef.size) throw parseError('ELF_BAD_HEADER_SIZE', `e_ehsize is ${h.e_ehsize}, not 64`, 52, h.e_ehsize)
}

/** Check that [offset, offset + length) lies in the file; `code` names what lies outside. */
export function checkRange(offset: bigint, length: bigint, fileSize: bigint, code: 'ELF_TABLE_OUTSIDE_FILE' | 'ELF_SEGMENT_OUTSIDE_FILE' | 'ELF_SECTION_OUTSIDE_FILE' | 'ELF_TRUNCATED', what: string, at: bigint): void {
  if (offset + length > U64_MAX) throw parseError('ELF_OFFSET_OVERFLOW', `${what}: offset ${hex(offset)} + size ${hex(length)} overflows`, at, offset)
  if (offset + length > fileSize) {
    throw parseError(code, `${what} at ${hex(offset)} size ${hex(length)} runs past the end of the file (${hex(fileSize)})`, at, offset)
  }
}

/**
 * A table of `count` entries of `def` at `offset`. Order of blame: an overflowing offset,
 * an offset past the end (lying offset), an absurd count (more than `maxCount`, checked
 * before anything is allocated), then a file that ends inside the table (truncated).
 */
function tableBounds(def: StructDef, offset: bigint, count: bigint, fileSize: bigint, maxCount: bigint, what: string, at: number): void {
  const size = count * BigInt(def.size)
  if (offset + size > U64_MAX) throw parseError('ELF_OFFSET_OVERFLOW', `${what}: offset ${hex(offset)} + size ${hex(size)} overflows`, at, offset)
  if (offset >= fileSize) throw parseError('ELF_TABLE_OUTSIDE_FILE', `${what} at ${hex(offset)} lies past the end of the file (${hex(fileSize)})`, at, offset)
  if (count > maxCount) throw parseError('ELF_ABSURD_COUNT', `${what}: ${count} entries is absurd (at most ${maxCount} here)`, at, count)
  if (offset + size > fileSize) throw parseError('ELF_TRUNCATED', `${what} at ${hex(offset)} (${count} entries) runs past the end of the file (${hex(fileSize)})`, at, fileSize)
}

/** The kernel refuses program header tables over 64 KiB (fs/binfmt_elf.c load_elf_phdrs). */
const MAX_PHNUM_READ = BigInt(Math.floor(65536 / ProgramHeaderDef.size))

function readProgramHeaders(input: Uint8Array, h: ElfHeader): ProgramHeader[] {
  if (h.e_phnum === 0) return []
  if (h.e_phentsize !== ProgramHeaderDef.size) {
    throw parseError('ELF_BAD_ENTSIZE', `e_phentsize is ${h.e_phentsize}, not ${ProgramHeaderDef.size}`, 54, h.e_phentsize)
  }
  tableBounds(ProgramHeaderDef, h.e_phoff, BigInt(h.e_phnum), BigInt(input.length), MAX_PHNUM_READ, 'program header table', 32)
  const out: ProgramHeader[] = []
  for (let i = 0; i < h.e_phnum; i++) out.push(decodeStruct(ProgramHeaderDef, input, Number(h.e_phoff) + i * ProgramHeaderDef.size))
  return out
}

function checkSegments(phdrs: readonly ProgramHeader[], fileSize: bigint): void {
  let prev: ProgramHeader | undefined
  phdrs.forEach((p, i) => {
    const what = `program header ${i}`
    if (p.p_vaddr + p.p_memsz > U64_MAX) throw parseError('ELF_OFFSET_OVERFLOW', `${what}: address ${hex(p.p_vaddr)} + size ${hex(p.p_memsz)} overflows`, undefined, p.p_vaddr)
    checkRange(p.p_offset, p.p_filesz, fileSize, 'ELF_SEGMENT_OUTSIDE_FILE', what, p.p_offset)
    if (p.p_type === PT.PT_INTERP) checkInterp(p, what)
    if (p.p_type !== PT.PT_LOAD) return
    if (p.p_filesz > p.p_memsz) throw parseError('ELF_BAD_SEGMENT_SIZE', `${what}: p_filesz ${hex(p.p_filesz)} > p_memsz ${hex(p.p_memsz)}`, undefined, p.p_filesz)
    if (p.p_align > 1n && ((p.p_align & (p.p_align - 1n)) !== 0n || p.p_vaddr % p.p_align !== p.p_offset % p.p_align)) {
      throw parseError('ELF_BAD_ALIGNMENT', `${what}: p_vaddr ${hex(p.p_vaddr)} and p_offset ${hex(p.p_offset)} not congruent modulo p_align ${hex(p.p_align)}`, undefined, p.p_align)
    }
    if (prev && p.p_vaddr < prev.p_vaddr) throw parseError('ELF_UNSORTED_LOAD', `${what}: PT_LOAD at ${hex(p.p_vaddr)} follows one at ${hex(prev.p_vaddr)} (must ascend)`, undefined, p.p_vaddr)
    if (prev && prev.p_vaddr + prev.p_memsz > p.p_vaddr) throw parseError('ELF_OVERLAPPING_LOAD', `${what}: PT_LOAD at ${hex(p.p_vaddr)} overlaps the one at ${hex(prev.p_vaddr)} (size ${hex(prev.p_memsz)})`, undefined, p.p_vaddr)
    prev = p
  })
}

function checkInterp(p: ProgramHeader, what: string): void {
  if (p.p_filesz === 0n) throw parseError('ELF_BAD_INTERP', `${what}: empty PT_INTERP`, p.p_offset, 0n)
}

function readSections(input: Uint8Array, h: ElfHeader): {sections: Section[]; count: number} {
  const fileSize = BigInt(input.length)
  if (h.e_shoff === 0n) return {sections: [], count: 0}
  let count = BigInt(h.e_shnum)
  let strndx = h.e_shstrndx
  if (h.e_shentsize !== SectionHeaderDef.size) {
    throw parseError('ELF_BAD_ENTSIZE', `e_shentsize is ${h.e_shentsize}, not ${SectionHeaderDef.size}`, 58, h.e_shentsize)
  }
  if (count === 0n || strndx === SHN_XINDEX) {
    // Extended numbering (gABI): the real values live in section 0.
    tableBounds(SectionHeaderDef, h.e_shoff, 1n, fileSize, 1n, 'section header 0', 40)
    const s0 = decodeStruct(SectionHeaderDef, input, Number(h.e_shoff))
    if (count === 0n) count = s0.sh_size
    if (strndx === SHN_XINDEX) strndx = s0.sh_link
  }
  // e_shnum is 16 bits; only the extended count (64 bits) can be absurd: more than fit in the file.
  tableBounds(SectionHeaderDef, h.e_shoff, count, fileSize, count > 0xffffn ? fileSize / BigInt(SectionHeaderDef.size) : 0xffffn, 'section header table', 40)
  checkTablesDisjoint(h, Number(count))
  const headers: SectionHeader[] = []
  for (let i = 0; i < Number(count); i++) headers.push(decodeStruct(SectionHeaderDef, input, Number(h.e_shoff) + i * SectionHeaderDef.size))
  headers.forEach((s, i) => {
    if (s.sh_type !== SHT.SHT_NOBITS && s.sh_type !== SHT.SHT_NULL) {
      checkRange(s.sh_offset, s.sh_size, fileSize, 'ELF_SECTION_OUTSIDE_FILE', `section ${i}`, h.e_shoff + BigInt(i * 64))
    }
    checkSectionTable(s, i, h.e_shoff + BigInt(i * 64))
  })
  if (strndx !== 0 && strndx >= headers.length) throw parseError('ELF_BAD_INDEX', `e_shstrndx ${strndx} out of range (${headers.length} sections)`, 62, strndx)
  const strtab = strndx === 0 ? undefined : headers[strndx]
  const sections = headers.map((header, index) => ({
    index, header, name: strtab ? readString(input, strtab, header.sh_name, `name of section ${index}`) : '',
  }))
  return {sections, count: Number(count)}
}

const TABLE_DEFS: Readonly<Record<number, StructDef>> = {
  [SHT.SHT_SYMTAB]: SymbolDef, [SHT.SHT_DYNSYM]: SymbolDef, [SHT.SHT_DYNAMIC]: DynamicDef, [SHT.SHT_RELA]: RelaDef,
}

function checkSectionTable(s: SectionHeader, i: number, at: bigint): void {
  const def = TABLE_DEFS[s.sh_type]
  if (!def || s.sh_size === 0n) return
  if (s.sh_entsize !== BigInt(def.size)) throw parseError('ELF_BAD_ENTSIZE', `section ${i}: sh_entsize ${s.sh_entsize}, not ${def.size}`, at, s.sh_entsize)
  if (s.sh_size % BigInt(def.size) !== 0n) throw parseError('ELF_BAD_SIZE', `section ${i}: size ${hex(s.sh_size)} is not a multiple of ${def.size}`, at, s.sh_size)
}

/** A NUL-terminated string at `offset` inside the string table section `table`. */
function readString(input: Uint8Array, table: SectionHeader, offset: number | bigint, what: string): string {
  const off = BigInt(offset)
  if (table.sh_type === SHT.SHT_NOBITS || off >= table.sh_size) throw parseError('ELF_BAD_STRING', `${what}: offset ${off} outside its string table`, table.sh_offset, off)
  return cString(input, table.sh_offset + off, table.sh_offset + table.sh_size, what)
}

/** A NUL-terminated string in [start, end) of `input`. */
export function cString(input: Uint8Array, start: bigint, end: bigint, what: string): string {
  const s = Number(start)
  const e = Math.min(Number(end), input.length)
  const nul = input.subarray(s, e).indexOf(0)
  if (nul < 0) throw parseError('ELF_BAD_STRING', `${what}: string at ${hex(start)} is not NUL-terminated`, start)
  return Buffer.from(input.subarray(s, s + nul)).toString('utf8')
}

function checkTablesDisjoint(h: ElfHeader, shCount: number): void {
  const ranges: [string, bigint, bigint][] = [['ELF header', 0n, 64n]]
  if (h.e_phnum > 0) ranges.push(['program header table', h.e_phoff, h.e_phoff + BigInt(h.e_phnum * ProgramHeaderDef.size)])
  if (shCount > 0) ranges.push(['section header table', h.e_shoff, h.e_shoff + BigInt(shCount * SectionHeaderDef.size)])
  for (let i = 0; i < ranges.length; i++) {
    for (let j = i + 1; j < ranges.length; j++) {
      const [a, as, ae] = ranges[i]
      const [b, bs, be] = ranges[j]
      if (as < be && bs < ae) throw parseError('ELF_OVERLAPPING_TABLES', `${a} and ${b} overlap`, bs, bs)
    }
  }
}

/**
 * Split everything outside the header tables into contents: symbol, dynamic and relocation
 * sections become parsed entries (re-encoded on write), everything else opaque bytes.
 * A table section overlapping something already placed stays opaque (bytes are never lost).
 */
function buildContents(input: Uint8Array, h: ElfHeader, sections: readonly Section[], shCount: number): Content[] {
  const taken: {start: bigint; end: bigint; content?: Content}[] = [{start: 0n, end: 64n}]
  if (h.e_phnum > 0) taken.push({start: h.e_phoff, end: h.e_phoff + BigInt(h.e_phnum * ProgramHeaderDef.size)})
  if (shCount > 0) taken.push({start: h.e_shoff, end: h.e_shoff + BigInt(shCount * SectionHeaderDef.size)})
  const candidates = sections.filter((s) => TABLE_DEFS[s.header.sh_type] && s.header.sh_size > 0n)
    .sort((a, b) => cmp(a.header.sh_offset, b.header.sh_offset))
  for (const s of candidates) {
    const start = s.header.sh_offset
    const end = start + s.header.sh_size
    if (taken.some((t) => t.start < end && start < t.end)) continue
    taken.push({start, end, content: tableContent(input, s)})
  }
  taken.sort((a, b) => cmp(a.start, b.start))
  const contents: Content[] = []
  const labels = new Map<bigint, string>()
  for (const s of sections) if (s.header.sh_type !== SHT.SHT_NOBITS && !labels.has(s.header.sh_offset)) labels.set(s.header.sh_offset, s.name)
  let cursor = 0n
  const fileSize = BigInt(input.length)
  const opaque = (from: bigint, to: bigint): void => {
    if (to > from) contents.push({kind: 'opaque', offset: from, bytes: input.subarray(Number(from), Number(to)), label: labels.get(from) || 'bytes'})
  }
  for (const t of taken) {
    opaque(cursor, t.start)
    if (t.content) contents.push(t.content)
    cursor = t.end > cursor ? t.end : cursor
  }
  opaque(cursor, fileSize)
  return contents
}

function tableContent(input: Uint8Array, s: Section): Content {
  const def = TABLE_DEFS[s.header.sh_type]
  const n = Number(s.header.sh_size / BigInt(def.size))
  const at = Number(s.header.sh_offset)
  const label = s.name || `section ${s.index}`
  if (def === SymbolDef) {
    return {kind: 'symbols', offset: s.header.sh_offset, label, entries: Array.from({length: n}, (_, i) => decodeStruct(SymbolDef, input, at + i * def.size))}
  }
  if (def === DynamicDef) {
    return {kind: 'dynamic', offset: s.header.sh_offset, label, entries: Array.from({length: n}, (_, i) => decodeStruct(DynamicDef, input, at + i * def.size))}
  }
  return {kind: 'rela', offset: s.header.sh_offset, label, entries: Array.from({length: n}, (_, i) => decodeStruct(RelaDef, input, at + i * def.size))}
}

export function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0
}

