/**
 * Notes (PT_NOTE segments, or SHT_NOTE sections when there are no program headers). The note
 * walker reads through a ByteReader, so the model (readNotes) and the scanner (ElfScan.notes)
 * decode notes with the same code.
 */
import {NT_GNU_ABI_TAG, NT_GNU_BUILD_ID, NT_GNU_PROPERTY_TYPE_0, NoteHeaderDef, PT, SHT, type ProgramHeader} from './definitions.js'
import type {ByteReader} from './byte-source.js'
import {parseError} from './errors.js'
import {decodeStruct} from '../binary/field-table.js'
import {modelReader} from './layout.js'
import type {ElfFile} from './model.js'

export interface Note {
  /** File offset of the note header. */
  readonly offset: bigint
  /** File offset of the descriptor. */
  readonly descOffset: bigint
  readonly name: string
  readonly type: number
  readonly desc: Uint8Array
}

/** A range of the file holding notes; `align` is the segment's or section's alignment. */
export interface NoteArea {
  readonly offset: bigint
  readonly size: bigint
  readonly align: bigint
}

export interface NoteReadOptions {
  /**
   * Ignore fewer bytes than a note header after the last note instead of throwing
   * ELF_BAD_NOTE (the scanner's leniency: it only looks for its own notes and build-ids).
   */
  readonly ignoreShortTail?: boolean
}

export function readNotes(elf: ElfFile): Note[] {
  const areas = noteSegments(elf.programHeaders)
  if (areas.length === 0) {
    for (const s of elf.sections) {
      if (s.header.sh_type === SHT.SHT_NOTE) areas.push({offset: s.header.sh_offset, size: s.header.sh_size, align: s.header.sh_addralign})
    }
  }
  return readNoteAreas(modelReader(elf), areas)
}

/** The PT_NOTE segments of `phdrs`, in order. */
export function noteSegments(phdrs: readonly ProgramHeader[]): NoteArea[] {
  return phdrs.filter((p) => p.p_type === PT.PT_NOTE).map((p) => ({offset: p.p_offset, size: p.p_filesz, align: p.p_align}))
}

/** Every note of every area, read through `reader`. */
export function readNoteAreas(reader: ByteReader, areas: readonly NoteArea[], options: NoteReadOptions = {}): Note[] {
  return areas.flatMap((a) => parseNotes(reader.read(a.offset, Number(a.size)), a.offset, a.align === 8n ? 8 : 4, options))
}

/** Parse a note area; `align` is 8 for notes in 8-aligned segments (GNU properties), else 4. */
export function parseNotes(bytes: Uint8Array, base: bigint, align: number, options: NoteReadOptions = {}): Note[] {
  const notes: Note[] = []
  // gABI: name and descriptor each start at the note alignment.
  const up = (n: number): number => Math.ceil(n / align) * align
  let at = 0
  while (at < bytes.length) {
    if (at + NoteHeaderDef.size > bytes.length) {
      if (options.ignoreShortTail) break
      throw parseError('ELF_BAD_NOTE', `note header at ${hexOf(base, at)} runs past its area`, base + BigInt(at))
    }
    const h = decodeStruct(NoteHeaderDef, bytes, at)
    const nameAt = at + NoteHeaderDef.size
    const descAt = up(nameAt + h.n_namesz)
    const end = descAt + h.n_descsz
    if (nameAt + h.n_namesz > bytes.length || end > bytes.length) {
      throw parseError('ELF_BAD_NOTE', `note at ${hexOf(base, at)}: name ${h.n_namesz} / desc ${h.n_descsz} bytes run past its area`, base + BigInt(at), h.n_descsz)
    }
    const rawName = bytes.subarray(nameAt, nameAt + h.n_namesz)
    const nul = rawName.indexOf(0)
    notes.push({offset: base + BigInt(at), descOffset: base + BigInt(descAt), name: Buffer.from(nul < 0 ? rawName : rawName.subarray(0, nul)).toString('latin1'),
      type: h.n_type, desc: bytes.slice(descAt, end)})
    at = up(end)
  }
  return notes
}

/** Encode one note (4-byte padding, as the gABI asks for ELF64 notes in practice). */
export function encodeNote(name: string, type: number, desc: Uint8Array): Uint8Array {
  const nameBytes = Buffer.from(name + '\0', 'latin1')
  const up = (n: number): number => Math.ceil(n / 4) * 4
  const out = new Uint8Array(NoteHeaderDef.size + up(nameBytes.length) + up(desc.length))
  const view = new DataView(out.buffer)
  view.setUint32(0, nameBytes.length, true)
  view.setUint32(4, desc.length, true)
  view.setUint32(8, type, true)
  out.set(nameBytes, 12)
  out.set(desc, 12 + up(nameBytes.length))
  return out
}

export function buildId(notes: readonly Note[]): string | undefined {
  const n = notes.find((x) => x.name === 'GNU' && x.type === NT_GNU_BUILD_ID)
  return n ? Buffer.from(n.desc).toString('hex') : undefined
}

/** The GNU ABI tag as "Linux 3.2.0" (OS, then the minimum kernel version). */
export function abiTag(notes: readonly Note[]): string | undefined {
  const n = notes.find((x) => x.name === 'GNU' && x.type === NT_GNU_ABI_TAG)
  if (!n || n.desc.length < 16) return undefined
  const v = new DataView(n.desc.buffer, n.desc.byteOffset, 16)
  const os = ['Linux', 'Hurd', 'Solaris', 'FreeBSD'][v.getUint32(0, true)] ?? `os ${v.getUint32(0, true)}`
  return `${os} ${v.getUint32(4, true)}.${v.getUint32(8, true)}.${v.getUint32(12, true)}`
}

const PROPERTY_NAMES: Readonly<Record<number, string>> = {
  0xc0000000: 'AARCH64_FEATURE_1_AND', 0xc0000002: 'X86_FEATURE_1_AND', 0xc0008002: 'X86_ISA_1_NEEDED',
  0xc0010001: 'X86_FEATURE_2_USED', 0xc0010002: 'X86_ISA_1_USED', 0xc0008001: 'X86_FEATURE_2_NEEDED', 1: 'STACK_SIZE', 2: 'NO_COPY_ON_PROTECTED',
}

export interface GnuProperty {
  readonly type: number
  readonly name: string
  readonly data: Uint8Array
}

/** GNU properties (NT_GNU_PROPERTY_TYPE_0): pr_type, pr_datasz, data padded to 8. */
export function gnuProperties(notes: readonly Note[]): GnuProperty[] {
  const out: GnuProperty[] = []
  for (const n of notes) {
    if (n.name !== 'GNU' || n.type !== NT_GNU_PROPERTY_TYPE_0) continue
    const v = new DataView(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength)
    let at = 0
    while (at + 8 <= n.desc.length) {
      const type = v.getUint32(at, true)
      const size = v.getUint32(at + 4, true)
      if (at + 8 + size > n.desc.length) throw parseError('ELF_BAD_NOTE', `GNU property at ${hexOf(n.offset, at)} runs past its note`, n.offset, size)
      out.push({type, name: PROPERTY_NAMES[type] ?? `0x${type.toString(16)}`, data: n.desc.slice(at + 8, at + 8 + size)})
      at += 8 + Math.ceil(size / 8) * 8
    }
  }
  return out
}

function hexOf(base: bigint, at: number): string {
  return '0x' + (base + BigInt(at)).toString(16)
}
