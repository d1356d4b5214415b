/**
 * A partial, read-only view of an ELF64 little-endian file: the ELF header, program headers,
 * section headers, dynamic entries and notes, read through a ByteSource so that files of
 * many GiB (images) are never loaded whole. Unlike parseElf it does not validate segments
 * against the file size: an image's heap reservation PT_LOAD lies past the end of the file
 * by design, and the image side checks its own layout. Notes, dynamic entries and addresses
 * are decoded by the same functions as the model's views.
 */
import {decodeStruct} from '../binary/field-table.js'
import {requireLoadedRange} from './addresses.js'
import type {ByteSource} from './byte-source.js'
import {
  ElfHeaderDef, ELFCLASS64, ELFDATA2LSB, PT, ProgramHeaderDef, SectionHeaderDef, type ElfHeader, type ProgramHeader,
  type SectionHeader,
} from './definitions.js'
import {readDynamicTable, type DynamicTableEntry} from './dynamic.js'
import {parseError} from './errors.js'
import {buildId, noteSegments, readNoteAreas, type Note} from './notes.js'

export interface ScannedSection {index: number; name: string; header: SectionHeader; headerOffset: bigint}

export class ElfScan {
  readonly header: ElfHeader
  readonly phdrs: ProgramHeader[]
  readonly sections: ScannedSection[]

  constructor(readonly src: ByteSource) {
    const ident = src.read(0n, Math.min(64, Number(src.size < 64n ? src.size : 64n)))
    if (ident.length < 4 || ident[0] !== 0x7f || ident[1] !== 0x45 || ident[2] !== 0x4c || ident[3] !== 0x46) {
      throw parseError('ELF_BAD_MAGIC', 'not an ELF file', 0, Buffer.from(ident.subarray(0, 4)).toString('hex'))
    }
    if (ident.length < 64) throw parseError('ELF_TRUNCATED', 'file ends inside the ELF header', 0, ident.length)
    if (ident[4] !== ELFCLASS64) throw parseError('ELF_BAD_CLASS', 'not a 64-bit ELF file', 4, ident[4])
    if (ident[5] !== ELFDATA2LSB) throw parseError('ELF_BAD_ENDIAN', 'not a little-endian ELF file', 5, ident[5])
    this.header = decodeStruct(ElfHeaderDef, ident, 0)
    const h = this.header
    if (h.e_phentsize !== ProgramHeaderDef.size && h.e_phnum > 0) throw parseError('ELF_BAD_ENTSIZE', `e_phentsize ${h.e_phentsize}`, 54, h.e_phentsize)
    const phBytes = src.read(h.e_phoff, h.e_phnum * ProgramHeaderDef.size)
    this.phdrs = []
    for (let i = 0; i < h.e_phnum; i++) this.phdrs.push(decodeStruct(ProgramHeaderDef, phBytes, i * ProgramHeaderDef.size))
    this.sections = this.readSections()
  }

  private readSections(): ScannedSection[] {
    const h = this.header
    if (h.e_shoff === 0n || h.e_shnum === 0) return []
    if (h.e_shentsize !== SectionHeaderDef.size) throw parseError('ELF_BAD_ENTSIZE', `e_shentsize ${h.e_shentsize}`, 58, h.e_shentsize)
    const raw = this.src.read(h.e_shoff, h.e_shnum * SectionHeaderDef.size)
    const headers: SectionHeader[] = []
    for (let i = 0; i < h.e_shnum; i++) headers.push(decodeStruct(SectionHeaderDef, raw, i * SectionHeaderDef.size))
    let names: Uint8Array | undefined
    const strtab = headers[h.e_shstrndx]
    if (h.e_shstrndx !== 0 && strtab && strtab.sh_type !== 8) names = this.src.read(strtab.sh_offset, Number(strtab.sh_size))
    return headers.map((header, index) => ({
      index, header, headerOffset: h.e_shoff + BigInt(index * SectionHeaderDef.size),
      name: names ? lenientCString(names, header.sh_name) : '',
    }))
  }

  loads(): ProgramHeader[] { return this.phdrs.filter((p) => p.p_type === PT.PT_LOAD) }
  firstOf(type: number): ProgramHeader | undefined { return this.phdrs.find((p) => p.p_type === type) }
  section(name: string): ScannedSection | undefined { return this.sections.find((s) => s.name === name) }

  /** File offset of virtual address `vaddr` (un-relocated), through the PT_LOAD file bytes; throws ELF_BAD_ADDRESS. */
  offsetOf(vaddr: bigint, length = 1n): bigint {
    return requireLoadedRange(this.phdrs, vaddr, length)
  }

  /** Entries of PT_DYNAMIC before DT_NULL, each with its file offset ([] without PT_DYNAMIC). */
  dynamic(): DynamicTableEntry[] {
    const dyn = this.firstOf(PT.PT_DYNAMIC)
    return dyn ? readDynamicTable(this.src, dyn).slice(0, -1) : []
  }

  dynValue(tag: number): bigint | undefined {
    return this.dynamic().find((d) => d.tag === BigInt(tag))?.value
  }

  /** Every note of every PT_NOTE segment (bytes after the last note too short for a header are ignored). */
  notes(): Note[] {
    return readNoteAreas(this.src, noteSegments(this.phdrs), {ignoreShortTail: true})
  }

  /** Lower-case hex GNU build-id, or null. */
  buildId(): string | null {
    return buildId(this.notes()) ?? null
  }
}

/** Section names here are only labels: an out-of-range or unterminated name is cut, not an error. */
function lenientCString(buf: Uint8Array, at: number): string {
  if (at >= buf.length) return ''
  const end = buf.indexOf(0, at)
  return Buffer.from(buf.subarray(at, end < 0 ? buf.length : end)).toString('latin1')
}
