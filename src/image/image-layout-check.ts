/**
 * The layout validator (DESIGN §9 rule 3): a written image is re-read and checked before it
 * is renamed into place, and `imgdump verify` runs the same checks. Structural only — the
 * payload checksums are verify's job (they read every byte).
 */
import {PT, MAX_PHNUM, ProgramHeaderDef} from '../elf/definitions.js'
import {normalize, type Range} from './address-ranges.js'
import {hex} from '../binary/hex.js'
import type {ElfScan} from '../elf/scan.js'
import type {Manifest} from './manifest.js'

export interface ImageProblem {code: string; message: string}

export function checkImageLayout(scan: ElfScan, manifest: Manifest, manifestOffset: bigint, fileSize: bigint): ImageProblem[] {
  const problems: ImageProblem[] = []
  const bad = (code: string, message: string) => problems.push({code, message})
  const loads = scan.loads()
  if (scan.phdrs.length > MAX_PHNUM) bad('IMAGE_TOO_MANY_SEGMENTS', `${scan.phdrs.length} program headers, the kernel reads at most ${MAX_PHNUM}`)
  for (let i = 1; i < loads.length; i++) {
    const a = loads[i - 1]
    const b = loads[i]
    if (b.p_vaddr < a.p_vaddr) bad('IMAGE_UNSORTED_LOAD', `PT_LOAD at ${hex(b.p_vaddr)} follows one at ${hex(a.p_vaddr)}`)
    if (a.p_vaddr + a.p_memsz > b.p_vaddr) bad('IMAGE_OVERLAPPING_LOAD', `PT_LOADs at ${hex(a.p_vaddr)} and ${hex(b.p_vaddr)} overlap in memory`)
  }
  for (const p of loads) {
    if ((p.p_offset - p.p_vaddr) % 4096n !== 0n) bad('IMAGE_BAD_ALIGNMENT', `PT_LOAD at ${hex(p.p_vaddr)}: offset ${hex(p.p_offset)} not congruent`)
    if (p.p_align > 0x10000n && p.p_offset >= manifest.originalSize) bad('IMAGE_BAD_ALIGNMENT', `new PT_LOAD at ${hex(p.p_vaddr)} has p_align ${hex(p.p_align)}`)
  }
  // Segments added by imgdump must not overlap each other in the file, nor the original bytes.
  const reservation = manifest.segments.filter((s) => s.role === 'reservation')
  const added = loads.filter((p) => p.p_offset >= manifest.originalSize && !reservation.some((r) => r.fileOffset === p.p_offset))
  const fileRanges = added.map((p) => ({start: p.p_offset, end: p.p_offset + p.p_filesz})).sort((a, b) => (a.start < b.start ? -1 : 1))
  for (let i = 1; i < fileRanges.length; i++) {
    if (fileRanges[i].start < fileRanges[i - 1].end) bad('IMAGE_OVERLAPPING_FILE', `segments overlap in the file at ${hex(fileRanges[i].start)}`)
  }
  for (const r of fileRanges) if (r.end > fileSize) bad('IMAGE_TRUNCATED', `a segment ends at ${hex(r.end)}, past the end of the file (${hex(fileSize)})`)
  const covering = (off: bigint, len: bigint) => loads.find((p) => off >= p.p_offset && off + len <= p.p_offset + p.p_filesz)
  const phSize = BigInt(scan.phdrs.length * ProgramHeaderDef.size)
  if (!covering(scan.header.e_phoff, phSize)) bad('IMAGE_PHDR_NOT_LOADED', 'the program header table is not inside a PT_LOAD')
  const phdr = scan.firstOf(PT.PT_PHDR)
  const phLoad = covering(scan.header.e_phoff, phSize)
  if (phdr && phLoad && phdr.p_vaddr !== phLoad.p_vaddr + (scan.header.e_phoff - phLoad.p_offset)) {
    bad('IMAGE_BAD_PT_PHDR', `PT_PHDR vaddr ${hex(phdr.p_vaddr)} does not match where the table is loaded`)
  }
  if (!covering(manifestOffset, 1n)) bad('IMAGE_MANIFEST_NOT_LOADED', 'the manifest note is not inside a PT_LOAD')
  checkSegments(scan, manifest, fileSize, bad)
  return problems
}

function checkSegments(scan: ElfScan, manifest: Manifest, fileSize: bigint, bad: (code: string, message: string) => void): void {
  const loads = scan.loads()
  const taken: Range[] = []
  for (const s of manifest.segments) {
    const vaddr = s.address - manifest.loadBias
    const p = loads.find((l) => l.p_vaddr === vaddr && l.p_offset === s.fileOffset)
    if (!p) { bad('IMAGE_SEGMENT_MISMATCH', `manifest ${s.role} segment at ${hex(s.address)} has no matching PT_LOAD`); continue }
    if (s.role === 'reservation') {
      if (p.p_offset < fileSize) bad('IMAGE_BAD_RESERVATION', 'the heap reservation segment does not lie past the end of the file')
      if ((p.p_flags & 7) !== 0) bad('IMAGE_BAD_RESERVATION', 'the heap reservation segment is accessible')
      continue
    }
    if (p.p_filesz !== s.fileSize || p.p_memsz < s.memSize) bad('IMAGE_SEGMENT_MISMATCH', `${s.role} segment at ${hex(s.address)}: sizes differ from its PT_LOAD`)
    taken.push({start: s.fileOffset, end: s.fileOffset + s.fileSize})
  }
  // Every byte a segment takes from the file is covered by exactly one payload.
  const pays = [...manifest.payloads].sort((a, b) => (a.fileOffset < b.fileOffset ? -1 : 1))
  for (let i = 1; i < pays.length; i++) {
    if (pays[i].fileOffset < pays[i - 1].fileOffset + pays[i - 1].length) bad('IMAGE_PAYLOAD_OVERLAP', `payloads overlap at ${hex(pays[i].fileOffset)}`)
  }
  for (const p of pays) if (p.fileOffset + p.length > fileSize) bad('IMAGE_TRUNCATED', `payload at ${hex(p.fileOffset)} runs past the end of the file`)
  const covered = normalize(pays.map((p) => ({start: p.fileOffset, end: p.fileOffset + p.length})))
  // Plus one payload per undo record (the patched bytes of the original).
  // and one for the moved program header table.
  const phTable = {start: scan.header.e_phoff, end: scan.header.e_phoff + BigInt(scan.header.e_phnum * ProgramHeaderDef.size)}
  const needed = normalize([...taken, ...manifest.undo.map((u) => ({start: u.fileOffset, end: u.fileOffset + BigInt(u.original.length)})),
    ...(phTable.start >= manifest.originalSize ? [phTable] : [])])
  const same = covered.length === needed.length && covered.every((r, i) => r.start === needed[i].start && r.end === needed[i].end)
  if (!same) bad('IMAGE_PAYLOAD_COVERAGE', 'payloads do not cover exactly the file bytes of the saved segments')
}
