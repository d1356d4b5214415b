/**
 * The dynamic section as the loader sees it: through PT_DYNAMIC (sections may be stripped),
 * strings through DT_STRTAB/DT_STRSZ. Also the interpreter (PT_INTERP).
 */
import {requireFileRange} from './addresses.js'
import type {ByteReader} from './byte-source.js'
import {DT, DynamicDef, PT, type ProgramHeader} from './definitions.js'
import {parseError} from './errors.js'
import {decodeStruct} from '../binary/field-table.js'
import {modelReader, readBytes} from './layout.js'
import type {ElfFile} from './model.js'
import {cString} from './reader.js'

export interface DynamicTableEntry {
  /** Index in the dynamic table. */
  readonly index: number
  /** File offset of this Elf64_Dyn (d_val is at fileOffset + 8). */
  readonly fileOffset: bigint
  readonly tag: bigint
  readonly value: bigint
}

export interface DynamicInfo {
  readonly entries: readonly DynamicTableEntry[]
  readonly needed: readonly string[]
  readonly soname?: string
  readonly runpath?: string
  readonly rpath?: string
  readonly flags: bigint
  readonly flags1: bigint
  /** First value of `tag`, if present. */
  value(tag: number): bigint | undefined
}

/** The dynamic table up to and including DT_NULL; undefined when there is no PT_DYNAMIC. */
export function readDynamic(elf: ElfFile): DynamicInfo | undefined {
  const ph = elf.programHeaders.find((p) => p.p_type === PT.PT_DYNAMIC)
  if (!ph) return undefined
  const entries = readDynamicTable(modelReader(elf), ph)
  const value = (tag: number): bigint | undefined => entries.find((e) => e.tag === BigInt(tag))?.value
  const strtab = value(DT.DT_STRTAB)
  const strsz = value(DT.DT_STRSZ) ?? 0n
  let strings: Uint8Array | undefined
  let stroff = 0n
  const str = (v: bigint, what: string): string => {
    if (strtab === undefined) throw parseError('ELF_BAD_DYNAMIC', `${what} without DT_STRTAB`, ph.p_offset)
    if (!strings) {
      stroff = requireFileRange(elf, strtab, strsz, 'DT_STRTAB')
      strings = readBytes(elf, stroff, strsz)
    }
    if (v >= strsz) throw parseError('ELF_BAD_STRING', `${what}: offset ${v} outside DT_STRSZ ${strsz}`, stroff, v)
    return cString(strings, v, strsz, what)
  }
  const all = (tag: number, what: string): string[] => entries.filter((e) => e.tag === BigInt(tag)).map((e) => str(e.value, what))
  const opt = (tag: number, what: string): string | undefined => all(tag, what)[0]
  return {
    entries, value,
    needed: all(DT.DT_NEEDED, 'DT_NEEDED'),
    soname: opt(DT.DT_SONAME, 'DT_SONAME'),
    runpath: opt(DT.DT_RUNPATH, 'DT_RUNPATH'),
    rpath: opt(DT.DT_RPATH, 'DT_RPATH'),
    flags: value(DT.DT_FLAGS) ?? 0n,
    flags1: value(DT.DT_FLAGS_1) ?? 0n,
  }
}

/** The entries of the PT_DYNAMIC segment `ph` up to and including DT_NULL, read through `reader`. */
export function readDynamicTable(reader: ByteReader, ph: ProgramHeader): DynamicTableEntry[] {
  const count = Number(ph.p_filesz / BigInt(DynamicDef.size))
  const bytes = reader.read(ph.p_offset, count * DynamicDef.size)
  const entries: DynamicTableEntry[] = []
  for (let i = 0; i < count; i++) {
    const d = decodeStruct(DynamicDef, bytes, i * DynamicDef.size)
    entries.push({index: i, fileOffset: ph.p_offset + BigInt(i * DynamicDef.size), tag: d.d_tag, value: d.d_val})
    if (d.d_tag === BigInt(DT.DT_NULL)) return entries
  }
  throw parseError('ELF_BAD_DYNAMIC', 'dynamic table has no DT_NULL terminator', ph.p_offset, ph.p_filesz)
}

/** The PT_INTERP path, if any. */
export function readInterpreter(elf: ElfFile): string | undefined {
  const ph = elf.programHeaders.find((p) => p.p_type === PT.PT_INTERP)
  if (!ph) return undefined
  const bytes = readBytes(elf, ph.p_offset, ph.p_filesz)
  if (bytes[bytes.length - 1] !== 0) throw parseError('ELF_BAD_INTERP', 'PT_INTERP is not NUL-terminated', ph.p_offset)
  return cString(bytes, 0n, BigInt(bytes.length), 'PT_INTERP')
}
