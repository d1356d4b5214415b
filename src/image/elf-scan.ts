/**
 * A small read-only view of an ELF64 little-endian file for the image side: headers,
 * sections, dynamic entries and notes, read through a bounds-checked `read(offset, length)`
 * so that images of many GiB are never loaded whole. Uses src/elf's definitions (field tables,
 * constants, error codes); the editing model of src/elf is not needed to plan an image.
 */
import fs from 'node:fs'
import {decodeStruct} from '../binary/field-table.js'
import {parseError} from '../elf/errors.js'
import {
  DynamicDef, ElfHeaderDef, ELFCLASS64, ELFDATA2LSB, NoteHeaderDef, NT_GNU_BUILD_ID, PT, ProgramHeaderDef,
  SectionHeaderDef, type DynamicEntry, type ElfHeader, type ProgramHeader, type SectionHeader,
} from '../elf/definitions.js'

export interface ScannedSection {index: number; name: string; header: SectionHeader; headerOffset: bigint}
export interface ScannedNote {owner: string; type: number; desc: Uint8Array; descOffset: bigint}

export interface ByteSource {
  readonly size: bigint
  read(offset: bigint, length: number): Uint8Array
}

export function bufferSource(buf: Uint8Array): ByteSource {
  return {
    size: BigInt(buf.length),
    read(offset, length) {
      if (offset < 0n || offset + BigInt(length) > BigInt(buf.length)) {
        throw parseError('ELF_TRUNCATED', `read of ${length} bytes at ${offset} past the end of the file (${buf.length} bytes)`, offset, length)
      }
      return buf.subarray(Number(offset), Number(offset) + length)
    },
  }
}

export function fdSource(fd: number): ByteSource {
  const size = BigInt(fs.fstatSync(fd).size)
  return {
    size,
    read(offset, length) {
      if (offset < 0n || offset + BigInt(length) > size) {
        throw parseError('ELF_TRUNCATED', `read of ${length} bytes at ${offset} past the end of the file (${size} bytes)`, offset, length)
      }
      // Every byte is read below or the read throws: no need to zero it first.
      const out = Buffer.allocUnsafe(length)
      let done = 0
      while (done < length) {
        const n = fs.readSync(fd, out, done, length - done, Number(offset) + done)
        if (n === 0) throw parseError('ELF_TRUNCATED', 'file shrank while reading', offset + BigInt(done))
        done += n
      }
      return out
    },
  }
}

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
      name: names ? cString(names, header.sh_name) : '',
    }))
  }

  loads(): ProgramHeader[] { return this.phdrs.filter((p) => p.p_type === PT.PT_LOAD) }
  firstOf(type: number): ProgramHeader | undefined { return this.phdrs.find((p) => p.p_type === type) }
  section(name: string): ScannedSection | undefined { return this.sections.find((s) => s.name === name) }

  /** File offset of virtual address `vaddr` (un-relocated), through the PT_LOAD file bytes. */
  offsetOf(vaddr: bigint, length = 1n): bigint {
    for (const p of this.loads()) {
      if (vaddr >= p.p_vaddr && vaddr + length <= p.p_vaddr + p.p_filesz) return p.p_offset + (vaddr - p.p_vaddr)
    }
    throw parseError('ELF_BAD_ADDRESS', `address 0x${vaddr.toString(16)} is not in the file bytes of any PT_LOAD`, undefined, vaddr)
  }

  /** Entries of PT_DYNAMIC up to DT_NULL, each with its file offset. */
  dynamic(): {entry: DynamicEntry; offset: bigint}[] {
    const dyn = this.firstOf(PT.PT_DYNAMIC)
    if (!dyn) return []
    const n = Number(dyn.p_filesz / 16n)
    const raw = this.src.read(dyn.p_offset, n * 16)
    const out: {entry: DynamicEntry; offset: bigint}[] = []
    for (let i = 0; i < n; i++) {
      const entry = decodeStruct(DynamicDef, raw, i * 16)
      if (entry.d_tag === 0n) return out
      out.push({entry, offset: dyn.p_offset + BigInt(i * 16)})
    }
    throw parseError('ELF_BAD_DYNAMIC', 'PT_DYNAMIC has no DT_NULL', dyn.p_offset)
  }

  dynValue(tag: number): bigint | undefined {
    return this.dynamic().find((d) => d.entry.d_tag === BigInt(tag))?.entry.d_val
  }

  /** Every note of every PT_NOTE segment. */
  notes(): ScannedNote[] {
    const out: ScannedNote[] = []
    for (const p of this.phdrs) {
      if (p.p_type !== PT.PT_NOTE) continue
      const raw = this.src.read(p.p_offset, Number(p.p_filesz))
      const align = p.p_align === 8n ? 8 : 4
      let at = 0
      while (at + 12 <= raw.length) {
        const nh = decodeStruct(NoteHeaderDef, raw, at)
        const nameAt = at + 12
        // gABI: name and descriptor each start at the note alignment (4, or 8 for 8-aligned PT_NOTEs).
        const descAt = roundUp(nameAt + nh.n_namesz, align)
        const end = roundUp(descAt + nh.n_descsz, align)
        if (descAt + nh.n_descsz > raw.length) throw parseError('ELF_BAD_NOTE', 'note runs past its segment', p.p_offset + BigInt(at), nh.n_descsz)
        const owner = Buffer.from(raw.subarray(nameAt, nameAt + Math.max(0, nh.n_namesz - 1))).toString('latin1')
        out.push({owner, type: nh.n_type, desc: raw.subarray(descAt, descAt + nh.n_descsz), descOffset: p.p_offset + BigInt(descAt)})
        at = end
      }
    }
    return out
  }

  /** Lower-case hex GNU build-id, or null. */
  buildId(): string | null {
    const n = this.notes().find((x) => x.owner === 'GNU' && x.type === NT_GNU_BUILD_ID)
    return n ? Buffer.from(n.desc).toString('hex') : null
  }
}

function roundUp(n: number, a: number): number { return Math.ceil(n / a) * a }

function cString(buf: Uint8Array, at: number): string {
  if (at >= buf.length) return ''
  const end = buf.indexOf(0, at)
  return Buffer.from(buf.subarray(at, end < 0 ? buf.length : end)).toString('latin1')
}

export function scanFile(path: string): ElfScan {
  return new ElfScan(bufferSource(fs.readFileSync(path)))
}
