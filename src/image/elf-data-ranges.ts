/**
 * Which bytes of the executable's writable segments come from the original file and which
 * from the saving process's memory (DESIGN §5 "Start-up code runs again over saved data").
 * From the file: every range the loader writes at start-up — .dynamic (ld.so adjusts it in
 * place by the load bias; a dumped copy would be adjusted twice), .got/.got.plt (a dumped,
 * non-zero GOT[1] sends lazy binding down the prelink path), the whole PT_GNU_RELRO range and
 * the TLS initialisation image (.tdata). .tbss is skipped: it has no bytes and shares its
 * addresses with .init_array. From memory: every other writable byte (.data, .bss, …).
 */
import {PF, PT, SHF, SHT, type ProgramHeader} from '../elf/definitions.js'
import {normalize, subtract, clip, type Range} from './address-ranges.js'
import type {ElfScan} from '../elf/scan.js'

export interface DataSegmentRanges {
  /** Index of the PT_LOAD in the original program header table. */
  phdrIndex: number
  load: ProgramHeader
  /** Un-relocated virtual address ranges inside the segment. */
  fromFile: Range[]
  fromMemory: Range[]
}

const LOADER_WRITTEN_SECTIONS = new Set(['.dynamic', '.got', '.got.plt', '.tdata'])

export function classifyDataSegments(scan: ElfScan): DataSegmentRanges[] {
  const fileTaken: Range[] = []
  for (const p of scan.phdrs) {
    if (p.p_type === PT.PT_GNU_RELRO || p.p_type === PT.PT_DYNAMIC) fileTaken.push({start: p.p_vaddr, end: p.p_vaddr + p.p_memsz})
    // The TLS template is p_filesz bytes; the rest of p_memsz is .tbss, which has no addresses of its own.
    if (p.p_type === PT.PT_TLS) fileTaken.push({start: p.p_vaddr, end: p.p_vaddr + p.p_filesz})
  }
  for (const s of scan.sections) {
    const h = s.header
    if ((h.sh_flags & SHF.SHF_ALLOC) === 0n) continue
    const tls = (h.sh_flags & SHF.SHF_TLS) !== 0n
    if (tls && h.sh_type === SHT.SHT_NOBITS) continue
    if (LOADER_WRITTEN_SECTIONS.has(s.name) || h.sh_type === SHT.SHT_DYNAMIC || tls) {
      fileTaken.push({start: h.sh_addr, end: h.sh_addr + h.sh_size})
    }
  }
  const merged = normalize(fileTaken)
  const out: DataSegmentRanges[] = []
  scan.phdrs.forEach((p, phdrIndex) => {
    if (p.p_type !== PT.PT_LOAD || (p.p_flags & PF.PF_W) === 0 || p.p_memsz === 0n) return
    const whole = {start: p.p_vaddr, end: p.p_vaddr + p.p_memsz}
    out.push({phdrIndex, load: p, fromFile: clip(merged, whole), fromMemory: subtract(whole, merged)})
  })
  return out
}
