/**
 * What `imgdump inspect` shows for an ELF file: a plain, JSON-ready record (64-bit values as
 * "0x…" strings so that no precision is lost). The shape is documented in docs/inspect.md.
 */
import {DF_1_PIE, ET, PF, PT, PtNames, SHF, SHT, ShtNames, SymbolDef} from './definitions.js'
import {readDynamic, readInterpreter} from './dynamic.js'
import type {ElfFile} from './model.js'
import {abiTag, buildId, gnuProperties, readNotes} from './notes.js'
import {hex} from '../binary/hex.js'

export type ElfKind = 'exec' | 'pie' | 'static-pie' | 'shared-object' | 'relocatable' | 'core' | 'other'

export interface ElfSegmentDescription {
  index: number; type: string; flags: string; offset: string; vaddr: string; paddr: string
  filesz: string; memsz: string; align: string
}

export interface ElfSectionDescription {
  index: number; name: string; type: string; flags: string; addr: string; offset: string; size: string
  link: number; info: number; align: string; entsize: string
}

export interface ElfDescription {
  format: 'elf'
  class: 'ELF64'
  endian: 'little'
  machine: 'x86-64' | 'aarch64'
  /** e_type name: ET_EXEC, ET_DYN, … */
  elfType: string
  kind: ElfKind
  entry: string
  interpreter: string | null
  needed: string[]
  soname: string | null
  runpath: string | null
  buildId: string | null
  abiTag: string | null
  gnuProperties: {type: string; data: string}[]
  fileSize: number
  programHeaders: ElfSegmentDescription[]
  sections: ElfSectionDescription[]
  symbols: {symtab: number | null; dynsym: number | null}
}

export function describeElf(elf: ElfFile, fileSize: number): ElfDescription {
  const interpreter = readInterpreter(elf)
  const dyn = readDynamic(elf)
  const notes = readNotes(elf)
  const count = (t: number): number | null => {
    const s = elf.sections.filter((x) => x.header.sh_type === t)
    return s.length === 0 ? null : s.reduce((n, x) => n + Number(x.header.sh_size / BigInt(SymbolDef.size)), 0)
  }
  return {
    format: 'elf', class: 'ELF64', endian: 'little',
    machine: elf.header.e_machine === 183 ? 'aarch64' : 'x86-64',
    elfType: Object.entries(ET).find(([, v]) => v === elf.header.e_type)?.[0] ?? `0x${elf.header.e_type.toString(16)}`,
    kind: classify(elf, interpreter !== undefined, dyn),
    entry: hex(elf.header.e_entry),
    interpreter: interpreter ?? null,
    needed: [...(dyn?.needed ?? [])],
    soname: dyn?.soname ?? null,
    runpath: dyn?.runpath ?? dyn?.rpath ?? null,
    buildId: buildId(notes) ?? null,
    abiTag: abiTag(notes) ?? null,
    gnuProperties: gnuProperties(notes).map((p) => ({type: p.name, data: Buffer.from(p.data).toString('hex')})),
    fileSize,
    programHeaders: elf.programHeaders.map((p, index) => ({
      index, type: PtNames.nameOf(p.p_type) ?? hex(p.p_type), flags: segmentFlags(p.p_flags),
      offset: hex(p.p_offset), vaddr: hex(p.p_vaddr), paddr: hex(p.p_paddr), filesz: hex(p.p_filesz), memsz: hex(p.p_memsz), align: hex(p.p_align),
    })),
    sections: elf.sections.map(({index, name, header: s}) => ({
      index, name, type: ShtNames.nameOf(s.sh_type) ?? hex(s.sh_type), flags: sectionFlags(s.sh_flags),
      addr: hex(s.sh_addr), offset: hex(s.sh_offset), size: hex(s.sh_size), link: s.sh_link, info: s.sh_info,
      align: hex(s.sh_addralign), entsize: hex(s.sh_entsize),
    })),
    symbols: {symtab: count(SHT.SHT_SYMTAB), dynsym: count(SHT.SHT_DYNSYM)},
  }
}

/**
 * exec = ET_EXEC. For ET_DYN: DF_1_PIE decides pie (with PT_INTERP) / static-pie (without);
 * without the flag (older linkers), a PT_INTERP and no DT_SONAME means pie, no PT_INTERP,
 * no DT_SONAME and no DT_NEEDED means static-pie, else a shared object (libc.so.6 has a
 * PT_INTERP, ld.so has neither).
 */
function classify(elf: ElfFile, hasInterp: boolean, dyn: ReturnType<typeof readDynamic>): ElfKind {
  switch (elf.header.e_type) {
    case ET.ET_EXEC: return 'exec'
    case ET.ET_REL: return 'relocatable'
    case ET.ET_CORE: return 'core'
    case ET.ET_DYN: break
    default: return 'other'
  }
  if (dyn && (dyn.flags1 & DF_1_PIE) !== 0n) return hasInterp ? 'pie' : 'static-pie'
  if (dyn?.soname !== undefined) return 'shared-object'
  if (hasInterp) return 'pie'
  if (dyn && dyn.needed.length === 0 && elf.programHeaders.some((p) => p.p_type === PT.PT_DYNAMIC) && elf.header.e_entry !== 0n) return 'static-pie'
  return 'shared-object'
}

function segmentFlags(f: number): string {
  return (f & PF.PF_R ? 'R' : '-') + (f & PF.PF_W ? 'W' : '-') + (f & PF.PF_X ? 'X' : '-')
}

function sectionFlags(f: bigint): string {
  return (f & SHF.SHF_WRITE ? 'W' : '') + (f & SHF.SHF_ALLOC ? 'A' : '') + (f & SHF.SHF_EXECINSTR ? 'X' : '') +
    (f & SHF.SHF_MERGE ? 'M' : '') + (f & SHF.SHF_STRINGS ? 'S' : '') + (f & SHF.SHF_INFO_LINK ? 'I' : '') + (f & SHF.SHF_TLS ? 'T' : '')
}

