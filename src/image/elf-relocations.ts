/**
 * Dynamic relocations whose target word is taken from memory are neutralised (DESIGN §5):
 * the saved word already holds the relocated value of a pinned process, and applying the
 * relocation again would reset what the program changed. COPY relocations stay (library-owned
 * variables start fresh); relocations into file-taken ranges stay untouched.
 *
 * glibc applies the first DT_RELACOUNT entries of DT_RELA as RELATIVE without reading their
 * type (elf_dynamic_do_Rela → elf_machine_rela_relative), so DT_RELACOUNT is lowered to the
 * number of leading entries that are still RELATIVE.
 * DT_RELR (packed RELATIVE) is decoded, filtered and re-encoded in place, padded with no-op
 * bitmap words (value 1: no bit set, only advances the cursor).
 */
import {DT, EM, R_AARCH64, R_X86_64} from '../elf/definitions.js'
import {contains, type Range} from './address-ranges.js'
import {hex} from '../binary/hex.js'
import type {ElfScan} from '../elf/scan.js'
import type {OriginalPatcher} from './original-patcher.js'
import {decodeRelr, encodeRelr} from '../elf/relocations.js'
import {editError} from './finalize-frame.js'

interface RelocTypes {none: number; copy: number; relative: number; jumpSlot: number}
function relocTypes(machine: number): RelocTypes {
  if (machine === EM.EM_AARCH64) {
    return {none: 0, copy: R_AARCH64.R_AARCH64_COPY, relative: R_AARCH64.R_AARCH64_RELATIVE, jumpSlot: R_AARCH64.R_AARCH64_JUMP_SLOT}
  }
  return {none: 0, copy: R_X86_64.R_X86_64_COPY, relative: R_X86_64.R_X86_64_RELATIVE, jumpSlot: R_X86_64.R_X86_64_JUMP_SLOT}
}

export interface RelocationReport {
  neutralized: number
  kept: number
  relativeCount?: {before: bigint; after: bigint}
  relrDropped: number
}


/** Rewrite the relocations of `scan` (the original) in `patcher`; `memory` are vaddr ranges taken from memory. */
export function neutralizeRelocations(scan: ElfScan, patcher: OriginalPatcher, memory: readonly Range[]): RelocationReport {
  const types = relocTypes(scan.header.e_machine)
  const dyn = scan.dynamic()
  const val = (tag: number) => dyn.find((d) => d.tag === BigInt(tag))
  if (val(DT.DT_REL) && (val(DT.DT_RELSZ)?.value ?? 0n) > 0n) {
    throw editError('ELF_REL_UNSUPPORTED', 'the executable uses DT_REL relocations; only DT_RELA is supported on this machine')
  }
  const report: RelocationReport = {neutralized: 0, kept: 0, relrDropped: 0}
  const rela = val(DT.DT_RELA)
  if (rela) {
    const size = val(DT.DT_RELASZ)?.value ?? 0n
    const countEntry = val(DT.DT_RELACOUNT)
    rewriteRelaTable(scan, patcher, memory, types, rela.value, size, countEntry, report)
  }
  const jmprel = val(DT.DT_JMPREL)
  if (jmprel) {
    const size = val(DT.DT_PLTRELSZ)?.value ?? 0n
    for (const row of readRela(scan, jmprel.value, size)) {
      if (contains(memory, row.r_offset, 8n)) {
        // Lazy PLT slots are processed by elf_machine_lazy_rel, which rejects R_*_NONE.
        throw editError('ELF_RELOC_UNSUPPORTED', `PLT relocation targets ${hex(row.r_offset)}, a range saved from memory`, row.r_offset)
      }
    }
  }
  const relr = val(DT.DT_RELR)
  if (relr) rewriteRelr(scan, patcher, memory, relr.value, val(DT.DT_RELRSZ)?.value ?? 0n, report)
  return report
}

interface RelaRow {r_offset: bigint; r_info: bigint; offset: bigint}

/** Entries of a RELA table (r_offset, r_info and the entry's file offset); addends are not needed. */
function readRela(scan: ElfScan, vaddr: bigint, size: bigint): RelaRow[] {
  if (size % 24n !== 0n) throw editError('ELF_BAD_SIZE', `relocation table size ${size} is not a multiple of 24`, size)
  if (size === 0n) return []
  const offset = scan.offsetOf(vaddr, size)
  const raw = Buffer.from(scan.src.read(offset, Number(size)))
  const out: RelaRow[] = []
  for (let at = 0; at < raw.length; at += 24) {
    out.push({r_offset: raw.readBigUInt64LE(at), r_info: raw.readBigUInt64LE(at + 8), offset: offset + BigInt(at)})
  }
  return out
}

/**
 * Neutralise in place (r_info = 0: R_*_NONE, no symbol). glibc runs the first DT_RELACOUNT
 * entries as RELATIVE without reading their type, so the count is lowered to the entries
 * before the first neutralised one; RELATIVE entries after it still work, through the
 * generic path (elf_machine_rela handles R_*_RELATIVE). Linkers sort RELATIVE entries by
 * address and .data/.bss come last, so the count rarely drops by more than the neutralised ones.
 * Tables of large runtimes hold tens of thousands of entries: scanned with plain numbers
 * (addresses of an executable are far below 2^53), bigints only for the entries patched.
 */
function rewriteRelaTable(scan: ElfScan, patcher: OriginalPatcher, memory: readonly Range[], types: RelocTypes,
  vaddr: bigint, size: bigint, countEntry: {value: bigint; fileOffset: bigint} | undefined, report: RelocationReport): void {
  if (size % 24n !== 0n) throw editError('ELF_BAD_SIZE', `relocation table size ${size} is not a multiple of 24`, size)
  if (size === 0n) return
  const offset = scan.offsetOf(vaddr, size)
  const raw = Buffer.from(scan.src.read(offset, Number(size)))
  const n = raw.length / 24
  const spans = memory.map((r) => [Number(r.start), Number(r.end)] as const)
  const count = countEntry ? Math.min(Number(countEntry.value), n) : 0
  let firstDropped = -1
  for (let i = 0; i < n; i++) {
    const at = i * 24
    const target = raw.readUInt32LE(at) + raw.readUInt32LE(at + 4) * 2 ** 32
    const type = raw.readUInt32LE(at + 8)
    const inMemory = spans.some(([s, e]) => target < e && target + 8 > s)
    if (!inMemory || type === types.copy || type === types.none) { report.kept++; continue }
    patcher.patchU64(offset + BigInt(at + 8), 0n, 'relocation → NONE')
    report.neutralized++
    if (firstDropped < 0) firstDropped = i
  }
  if (countEntry && firstDropped >= 0 && firstDropped < count) {
    patcher.patchU64(countEntry.fileOffset + 8n, BigInt(firstDropped), 'DT_RELACOUNT')
    report.relativeCount = {before: countEntry.value, after: BigInt(firstDropped)}
  }
}

function rewriteRelr(scan: ElfScan, patcher: OriginalPatcher, memory: readonly Range[], vaddr: bigint, size: bigint, report: RelocationReport): void {
  if (size % 8n !== 0n) throw editError('ELF_RELR_UNSUPPORTED', `DT_RELRSZ ${size} is not a multiple of 8`, size)
  const offset = scan.offsetOf(vaddr, size === 0n ? 1n : size)
  const raw = Buffer.from(scan.src.read(offset, Number(size)))
  const words = Array.from({length: Number(size / 8n)}, (_, i) => raw.readBigUInt64LE(i * 8))
  const addrs = decodeRelr(words)
  const keep = addrs.filter((a) => !contains(memory, a, 8n))
  if (keep.length === addrs.length) return
  if (keep.some((a) => a % 8n !== 0n)) throw editError('ELF_RELR_UNSUPPORTED', 'DT_RELR address not 8-aligned')
  const encoded = encodeRelr(keep)
  if (encoded.length > words.length) {
    throw editError('ELF_RELR_UNSUPPORTED', `re-encoding DT_RELR without saved words needs ${encoded.length} entries, the table has ${words.length}`,
      undefined, 'link the runtime without -z pack-relative-relocs')
  }
  const out = Buffer.alloc(Number(size))
  for (let i = 0; i < words.length; i++) out.writeBigUInt64LE(i < encoded.length ? encoded[i] : 1n, i * 8)
  patcher.patch(offset, out, 'DT_RELR: words saved from memory dropped')
  report.relrDropped += addrs.length - keep.length
}
