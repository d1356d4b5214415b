/**
 * Virtual address ↔ file offset, through the PT_LOAD segments (what the loader maps).
 * The functions over program headers serve both the model (ElfFile) and the scanner (ElfScan).
 */
import {PT, type ProgramHeader} from './definitions.js'
import {parseError} from './errors.js'
import type {ElfFile} from './model.js'

/** File offset of [vaddr, vaddr + length) when one PT_LOAD maps all of it to file bytes, else undefined. */
export function loadedOffset(phdrs: readonly ProgramHeader[], vaddr: bigint, length: bigint): bigint | undefined {
  for (const p of phdrs) {
    if (p.p_type === PT.PT_LOAD && vaddr >= p.p_vaddr && vaddr + length <= p.p_vaddr + p.p_filesz) return p.p_offset + (vaddr - p.p_vaddr)
  }
  return undefined
}

/** Like loadedOffset, but throws ELF_BAD_ADDRESS when the range is not file-backed; `what` names it in the message. */
export function requireLoadedRange(phdrs: readonly ProgramHeader[], vaddr: bigint, length: bigint, what?: string): bigint {
  const offset = loadedOffset(phdrs, vaddr, length)
  if (offset !== undefined) return offset
  const size = what === undefined ? '' : ` (size 0x${length.toString(16)})`
  throw parseError('ELF_BAD_ADDRESS', `${what === undefined ? '' : `${what}: `}address 0x${vaddr.toString(16)}${size} is not in the file bytes of any PT_LOAD`, undefined, vaddr)
}

/** File offset of `vaddr`, or undefined when no PT_LOAD maps it to file bytes. */
export function vaddrToOffset(elf: ElfFile, vaddr: bigint): bigint | undefined {
  return loadedOffset(elf.programHeaders, vaddr, 1n)
}

/** Like vaddrToOffset, but `length` bytes must be file-backed; throws ELF_BAD_ADDRESS otherwise. */
export function requireFileRange(elf: ElfFile, vaddr: bigint, length: bigint, what: string): bigint {
  return requireLoadedRange(elf.programHeaders, vaddr, length, what)
}

/** Virtual address of file offset `offset`, or undefined when no PT_LOAD maps it. */
export function offsetToVaddr(elf: ElfFile, offset: bigint): bigint | undefined {
  for (const p of elf.programHeaders) {
    if (p.p_type === PT.PT_LOAD && offset >= p.p_offset && offset < p.p_offset + p.p_filesz) return p.p_vaddr + (offset - p.p_offset)
  }
  return undefined
}
