/**
 * Dynamic relocations as ld.so applies them: DT_RELA/DT_RELASZ (with DT_RELACOUNT leading
 * RELATIVE entries), DT_JMPREL/DT_PLTRELSZ (PLT, must be RELA on x86-64/aarch64), and the
 * packed DT_RELR table (glibc ≥ 2.36). Read through the dynamic table, so stripped files work.
 */
import {requireFileRange} from './addresses.js'
import {DT, EM, RelaDef, RelocNamesAarch64, RelocNamesX86_64, SymbolDef} from './definitions.js'
import {parseError} from './errors.js'
import {decodeStruct} from '../binary/field-table.js'
import {readBytes} from './layout.js'
import type {ElfFile} from './model.js'
import {readDynamic, type DynamicInfo} from './dynamic.js'
import {cString} from './reader.js'

export interface Relocation {
  /** 'rela' (DT_RELA table) or 'jmprel' (DT_JMPREL, the PLT's). */
  readonly table: 'rela' | 'jmprel'
  readonly index: number
  /** File offset of the Elf64_Rela entry itself (r_info is at fileOffset + 8). */
  readonly fileOffset: bigint
  /** r_offset: the virtual address (before load bias) of the word relocated. */
  readonly offset: bigint
  readonly type: number
  readonly typeName: string
  readonly symbol: number
  /** Name of the dynamic symbol ('' for none). */
  readonly symbolName: string
  readonly addend: bigint
}

export interface DynamicRelocations {
  readonly relocations: readonly Relocation[]
  /** DT_RELACOUNT (number of leading R_*_RELATIVE entries of the DT_RELA table), if present. */
  readonly relaCount?: bigint
  /** Addresses relocated (RELATIVE) by the packed DT_RELR table. */
  readonly relr: readonly bigint[]
  /** File range of the DT_RELR table, if any. */
  readonly relrRange?: {readonly offset: bigint; readonly size: bigint}
}

export function relocationTypeName(elf: ElfFile, type: number): string {
  const names = elf.header.e_machine === EM.EM_AARCH64 ? RelocNamesAarch64 : RelocNamesX86_64
  return names.nameOf(type) ?? `type ${type}`
}

export function readDynamicRelocations(elf: ElfFile, dyn: DynamicInfo | undefined = readDynamic(elf)): DynamicRelocations {
  if (!dyn) return {relocations: [], relr: []}
  const symName = symbolNamer(elf, dyn)
  const table = (which: 'rela' | 'jmprel', addrTag: number, sizeTag: number): Relocation[] => {
    const addr = dyn.value(addrTag)
    const size = dyn.value(sizeTag) ?? 0n
    if (addr === undefined || size === 0n) return []
    if (size % BigInt(RelaDef.size) !== 0n) throw parseError('ELF_BAD_SIZE', `${which}: size ${size} is not a multiple of ${RelaDef.size}`, undefined, size)
    const off = requireFileRange(elf, addr, size, which === 'rela' ? 'DT_RELA' : 'DT_JMPREL')
    const bytes = readBytes(elf, off, size)
    const out: Relocation[] = []
    for (let i = 0; i < Number(size) / RelaDef.size; i++) {
      const r = decodeStruct(RelaDef, bytes, i * RelaDef.size)
      const type = Number(r.r_info & 0xffffffffn)
      const symbol = Number(r.r_info >> 32n)
      out.push({table: which, index: i, fileOffset: off + BigInt(i * RelaDef.size), offset: r.r_offset, type,
        typeName: relocationTypeName(elf, type), symbol, symbolName: symName(symbol), addend: BigInt.asIntN(64, r.r_addend)})
    }
    return out
  }
  const pltrel = dyn.value(DT.DT_PLTREL)
  if (pltrel !== undefined && pltrel !== BigInt(DT.DT_RELA) && dyn.value(DT.DT_JMPREL) !== undefined) {
    throw parseError('ELF_BAD_DYNAMIC', `DT_PLTREL is ${pltrel}: only RELA relocations are supported`, undefined, pltrel)
  }
  const relocations = [...table('rela', DT.DT_RELA, DT.DT_RELASZ), ...table('jmprel', DT.DT_JMPREL, DT.DT_PLTRELSZ)]
  const {relr, relrRange} = readRelr(elf, dyn)
  return {relocations, relaCount: dyn.value(DT.DT_RELACOUNT), relr, relrRange}
}

/** Decode DT_RELR: an address word, then bitmap words (low bit 1) covering the next 63 words each. */
function readRelr(elf: ElfFile, dyn: DynamicInfo): {relr: bigint[]; relrRange?: {offset: bigint; size: bigint}} {
  const addr = dyn.value(DT.DT_RELR)
  const size = dyn.value(DT.DT_RELRSZ) ?? 0n
  if (addr === undefined || size === 0n) return {relr: []}
  if (size % 8n !== 0n) throw parseError('ELF_BAD_SIZE', `DT_RELRSZ ${size} is not a multiple of 8`, undefined, size)
  const offset = requireFileRange(elf, addr, size, 'DT_RELR')
  const bytes = readBytes(elf, offset, size)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const words: bigint[] = []
  for (let i = 0; i < bytes.length; i += 8) words.push(view.getBigUint64(i, true))
  return {relr: decodeRelr(words), relrRange: {offset, size}}
}

/** Decode DT_RELR words (glibc elf_dynamic_do_Relr): an address, then 63-bit bitmaps of the
 * following words; a bitmap of zero bits (word 1) relocates nothing, so padding is harmless. */
export function decodeRelr(words: readonly bigint[]): bigint[] {
  const out: bigint[] = []
  let base = 0n
  for (const w of words) {
    if ((w & 1n) === 0n) {
      out.push(w)
      base = w + 8n
    } else {
      for (let bit = 1n; bit < 64n; bit++) if ((w >> bit) & 1n) out.push(base + (bit - 1n) * 8n)
      base += 63n * 8n
    }
  }
  return out
}

function symbolNamer(elf: ElfFile, dyn: DynamicInfo): (index: number) => string {
  const symtab = dyn.value(DT.DT_SYMTAB)
  const strtab = dyn.value(DT.DT_STRTAB)
  const strsz = dyn.value(DT.DT_STRSZ) ?? 0n
  let strings: Uint8Array | undefined
  return (index) => {
    if (index === 0) return ''
    if (symtab === undefined || strtab === undefined) throw parseError('ELF_BAD_DYNAMIC', 'relocation names a symbol but there is no DT_SYMTAB/DT_STRTAB')
    const at = requireFileRange(elf, symtab + BigInt(index * SymbolDef.size), BigInt(SymbolDef.size), `dynamic symbol ${index}`)
    const sym = decodeStruct(SymbolDef, readBytes(elf, at, BigInt(SymbolDef.size)), 0)
    strings ??= readBytes(elf, requireFileRange(elf, strtab, strsz, 'DT_STRTAB'), strsz)
    if (BigInt(sym.st_name) >= strsz) throw parseError('ELF_BAD_STRING', `dynamic symbol ${index}: name offset ${sym.st_name} outside DT_STRSZ`, at, sym.st_name)
    return cString(strings, BigInt(sym.st_name), strsz, `dynamic symbol ${index}`)
  }
}

/**
 * The DT_RELACOUNT value for a DT_RELA table: the number of leading R_*_RELATIVE entries.
 * ld.so applies the first DT_RELACOUNT entries as RELATIVE and asserts their type
 * (elf/do-rel.h, sysdeps/x86_64/dl-machine.h elf_machine_rela_relative; measured), so after
 * rewriting one of them to NONE the count must stop before it.
 */
export function leadingRelativeCount(elf: ElfFile, relocations: readonly Relocation[]): bigint {
  const relative = elf.header.e_machine === EM.EM_AARCH64 ? 1027 : 8
  let n = 0n
  for (const r of relocations) {
    if (r.table !== 'rela' || r.type !== relative) break
    n++
  }
  return n
}

/** Encode addresses (sorted, 8-aligned) as DT_RELR words: an address, then 63-bit bitmaps. */
export function encodeRelr(addresses: readonly bigint[]): bigint[] {
  const out: bigint[] = []
  let i = 0
  while (i < addresses.length) {
    const base = addresses[i++]
    out.push(base)
    let next = base + 8n
    for (;;) {
      let bitmap = 0n
      while (i < addresses.length && addresses[i] >= next && addresses[i] < next + 63n * 8n && (addresses[i] - next) % 8n === 0n) {
        bitmap |= 1n << ((addresses[i] - next) / 8n + 1n)
        i++
      }
      if (bitmap === 0n) break
      out.push(bitmap | 1n)
      next += 63n * 8n
    }
  }
  return out
}
