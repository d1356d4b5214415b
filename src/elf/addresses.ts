/** Virtual address ↔ file offset, through the PT_LOAD segments (what the loader maps). */
import {PT} from './definitions.js'
import {parseError} from './errors.js'
import type {ElfFile} from './model.js'

/** File offset of `vaddr`, or undefined when no PT_LOAD maps it to file bytes. */
export function vaddrToOffset(elf: ElfFile, vaddr: bigint): bigint | undefined {
  for (const p of elf.programHeaders) {
    if (p.p_type === PT.PT_LOAD && vaddr >= p.p_vaddr && vaddr < p.p_vaddr + p.p_filesz) return p.p_offset + (vaddr - p.p_vaddr)
  }
  return undefined
}

/** Like vaddrToOffset, but `length` bytes must be file-backed; throws ELF_BAD_ADDRESS otherwise. */
export function requireFileRange(elf: ElfFile, vaddr: bigint, length: bigint, what: string): bigint {
  for (const p of elf.programHeaders) {
    if (p.p_type === PT.PT_LOAD && vaddr >= p.p_vaddr && vaddr + length <= p.p_vaddr + p.p_filesz) return p.p_offset + (vaddr - p.p_vaddr)
  }
  throw parseError('ELF_BAD_ADDRESS', `${what}: address 0x${vaddr.toString(16)} (size 0x${length.toString(16)}) is not in the file bytes of any PT_LOAD`, undefined, vaddr)
}

/** Virtual address of file offset `offset`, or undefined when no PT_LOAD maps it. */
export function offsetToVaddr(elf: ElfFile, offset: bigint): bigint | undefined {
  for (const p of elf.programHeaders) {
    if (p.p_type === PT.PT_LOAD && offset >= p.p_offset && offset < p.p_offset + p.p_filesz) return p.p_vaddr + (offset - p.p_offset)
  }
  return undefined
}
