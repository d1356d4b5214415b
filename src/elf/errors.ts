import {ImgdumpError, type ErrorDetails} from '../errors.js'

/**
 * Stable codes of ElfError (documented in docs/elf.md). Scripts may rely on them:
 * never rename, only append.
 */
export type ElfErrorCode =
  // reading (phase 'parse')
  | 'ELF_TRUNCATED' // the file ends inside a structure
  | 'ELF_BAD_MAGIC' // not an ELF file
  | 'ELF_BAD_CLASS' // not ELF64
  | 'ELF_BAD_ENDIAN' // not little-endian
  | 'ELF_BAD_VERSION' // e_ident[EI_VERSION] / e_version not EV_CURRENT
  | 'ELF_BAD_MACHINE' // neither x86-64 nor aarch64
  | 'ELF_BAD_HEADER_SIZE' // e_ehsize is not 64
  | 'ELF_BAD_ENTSIZE' // e_phentsize / e_shentsize / sh_entsize of a known table is wrong
  | 'ELF_ABSURD_COUNT' // a count whose table could not fit in the file
  | 'ELF_OFFSET_OVERFLOW' // offset + size (or address + size) overflows 64 bits
  | 'ELF_TABLE_OUTSIDE_FILE' // a header table lies (partly) beyond the end of the file
  | 'ELF_OVERLAPPING_TABLES' // ELF header, program header table and section header table overlap
  | 'ELF_SEGMENT_OUTSIDE_FILE' // a segment's file bytes lie beyond the end of the file
  | 'ELF_SECTION_OUTSIDE_FILE' // a section's file bytes lie beyond the end of the file
  | 'ELF_BAD_SEGMENT_SIZE' // PT_LOAD with p_filesz > p_memsz
  | 'ELF_BAD_ALIGNMENT' // p_vaddr and p_offset not congruent modulo p_align, or p_align not a power of two
  | 'ELF_UNSORTED_LOAD' // PT_LOAD entries not in ascending p_vaddr order
  | 'ELF_OVERLAPPING_LOAD' // two PT_LOAD entries overlap in memory
  | 'ELF_BAD_INDEX' // a section index (e_shstrndx, sh_link) out of range
  | 'ELF_BAD_STRING' // a string offset outside its table, or unterminated
  | 'ELF_BAD_INTERP' // PT_INTERP not a NUL-terminated path
  | 'ELF_BAD_NOTE' // a note whose sizes run past its segment/section
  | 'ELF_BAD_DYNAMIC' // dynamic section malformed (no DT_NULL, bad sizes)
  | 'ELF_BAD_ADDRESS' // a virtual address that no PT_LOAD maps to file bytes
  | 'ELF_BAD_SIZE' // a table size that is not a multiple of its entry size
  // editing (phase 'edit')
  | 'ELF_TOO_MANY_SEGMENTS' // more program headers than the kernel reads (one page: 73)
  | 'ELF_PHDR_NOT_MOVED' // operation needs moveProgramHeaders first
  | 'ELF_NOT_A_LOAD' // index does not name a PT_LOAD
  | 'ELF_NOT_LOADED' // a PT_NOTE range not inside any PT_LOAD
  | 'ELF_PATCH_OUTSIDE_CONTENT' // patch overlaps a header table, an external range or the end of the file
  | 'ELF_NO_SUCH_DYNAMIC' // a dynamic tag that the file does not have
  | 'ELF_BAD_EDIT' // invalid arguments to an edit (sizes, alignment)

/** A malformed ELF file (phase 'parse') or an edit the file cannot take (phase 'edit'). */
export class ElfError extends ImgdumpError {
  declare readonly code: ElfErrorCode
  constructor(phase: 'parse' | 'edit', code: ElfErrorCode, message: string, details: ErrorDetails = {}) {
    // The code is part of the one-line message so users can look it up in docs/elf.md.
    super(phase, code, `${message} [${code}]`, details)
    this.name = 'ElfError'
  }
}

export function parseError(code: ElfErrorCode, message: string, offset?: number | bigint, value?: number | bigint | string): ElfError {
  return new ElfError('parse', code, message, {offset, value})
}

export function editError(code: ElfErrorCode, message: string, value?: number | bigint | string, hint?: string): ElfError {
  return new ElfError('edit', code, message, {value, hint})
}
