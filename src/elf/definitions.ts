/**
 * ELF64 structures and constants (System V gABI, glibc elf.h), declared once as tables.
 * Reader (reader.ts), writer (writer.ts) and display names all derive from these.
 */
import {defineConstants} from '../binary/constant-set.js'
import {type FieldDef, type StructValue, defineStruct as defineStructWith} from '../binary/field-table.js'
import {parseError} from './errors.js'

/** A structure that runs past the end of the file is ELF_TRUNCATED, whichever reader decodes it. */
const defineStruct = <const F extends readonly FieldDef[]>(name: string, fields: F) => defineStructWith(name, fields, {
  truncated: (what, offset, need, have) => parseError('ELF_TRUNCATED', `${what} at offset ${offset} needs ${need} bytes, only ${have} available`, offset, need),
})

export const ElfHeaderDef = defineStruct('Elf64_Ehdr', [
  {name: 'ei_magic', width: 4, kind: 'bytes', doc: '\\x7fELF'},
  {name: 'ei_class', width: 1, doc: 'ELFCLASS64 = 2'},
  {name: 'ei_data', width: 1, doc: 'ELFDATA2LSB = 1 (little-endian)'},
  {name: 'ei_version', width: 1, doc: 'EV_CURRENT = 1'},
  {name: 'ei_osabi', width: 1, doc: 'OS ABI (0 = System V, 3 = GNU/Linux)'},
  {name: 'ei_abiversion', width: 1, doc: 'ABI version'},
  {name: 'ei_pad', width: 7, kind: 'bytes', doc: 'padding of e_ident (carried through)'},
  {name: 'e_type', width: 2, doc: 'ET_EXEC, ET_DYN, …'},
  {name: 'e_machine', width: 2, doc: 'EM_X86_64 = 62, EM_AARCH64 = 183'},
  {name: 'e_version', width: 4, doc: 'EV_CURRENT = 1'},
  {name: 'e_entry', width: 8, doc: 'entry point virtual address'},
  {name: 'e_phoff', width: 8, doc: 'file offset of the program header table'},
  {name: 'e_shoff', width: 8, doc: 'file offset of the section header table'},
  {name: 'e_flags', width: 4, doc: 'processor flags'},
  {name: 'e_ehsize', width: 2, doc: 'size of this header (64)'},
  {name: 'e_phentsize', width: 2, doc: 'size of a program header (56)'},
  {name: 'e_phnum', width: 2, doc: 'number of program headers'},
  {name: 'e_shentsize', width: 2, doc: 'size of a section header (64)'},
  {name: 'e_shnum', width: 2, doc: 'number of section headers (0 and e_shoff ≠ 0: in sh_size of section 0)'},
  {name: 'e_shstrndx', width: 2, doc: 'section index of the section name table (SHN_XINDEX: in sh_link of section 0)'},
] as const)

export const ProgramHeaderDef = defineStruct('Elf64_Phdr', [
  {name: 'p_type', width: 4, doc: 'PT_LOAD, PT_DYNAMIC, …'},
  {name: 'p_flags', width: 4, doc: 'PF_R | PF_W | PF_X'},
  {name: 'p_offset', width: 8, doc: 'file offset of the segment'},
  {name: 'p_vaddr', width: 8, doc: 'virtual address'},
  {name: 'p_paddr', width: 8, doc: 'physical address (unused on Linux, usually = p_vaddr)'},
  {name: 'p_filesz', width: 8, doc: 'bytes in the file'},
  {name: 'p_memsz', width: 8, doc: 'bytes in memory (≥ p_filesz for PT_LOAD; the rest is zero)'},
  {name: 'p_align', width: 8, doc: 'alignment; p_vaddr ≡ p_offset (mod p_align)'},
] as const)

export const SectionHeaderDef = defineStruct('Elf64_Shdr', [
  {name: 'sh_name', width: 4, doc: 'offset of the name in the section name table'},
  {name: 'sh_type', width: 4, doc: 'SHT_PROGBITS, SHT_NOBITS, …'},
  {name: 'sh_flags', width: 8, doc: 'SHF_WRITE | SHF_ALLOC | SHF_EXECINSTR | …'},
  {name: 'sh_addr', width: 8, doc: 'virtual address when allocated'},
  {name: 'sh_offset', width: 8, doc: 'file offset'},
  {name: 'sh_size', width: 8, doc: 'size in bytes (no file bytes for SHT_NOBITS)'},
  {name: 'sh_link', width: 4, doc: 'linked section (string table of a symbol table, …)'},
  {name: 'sh_info', width: 4, doc: 'extra info (first global symbol, target of relocations, …)'},
  {name: 'sh_addralign', width: 8, doc: 'alignment'},
  {name: 'sh_entsize', width: 8, doc: 'entry size of a table section'},
] as const)

export const SymbolDef = defineStruct('Elf64_Sym', [
  {name: 'st_name', width: 4, doc: 'offset of the name in the linked string table'},
  {name: 'st_info', width: 1, doc: 'binding << 4 | type'},
  {name: 'st_other', width: 1, doc: 'visibility'},
  {name: 'st_shndx', width: 2, doc: 'section index'},
  {name: 'st_value', width: 8, doc: 'value (address)'},
  {name: 'st_size', width: 8, doc: 'size'},
] as const)

export const DynamicDef = defineStruct('Elf64_Dyn', [
  {name: 'd_tag', width: 8, doc: 'DT_* tag (signed in the ABI; DT_* values used here are positive)'},
  {name: 'd_val', width: 8, doc: 'value or address'},
] as const)

export const RelaDef = defineStruct('Elf64_Rela', [
  {name: 'r_offset', width: 8, doc: 'virtual address of the word to relocate'},
  {name: 'r_info', width: 8, doc: 'symbol index << 32 | type'},
  {name: 'r_addend', width: 8, doc: 'addend (signed)'},
] as const)

export const NoteHeaderDef = defineStruct('Elf64_Nhdr', [
  {name: 'n_namesz', width: 4, doc: 'name size including NUL'},
  {name: 'n_descsz', width: 4, doc: 'descriptor size'},
  {name: 'n_type', width: 4, doc: 'note type (meaning depends on the name)'},
] as const)

export type ElfHeader = StructValue<typeof ElfHeaderDef>
export type ProgramHeader = StructValue<typeof ProgramHeaderDef>
export type SectionHeader = StructValue<typeof SectionHeaderDef>
export type SymbolEntry = StructValue<typeof SymbolDef>
export type DynamicEntry = StructValue<typeof DynamicDef>
export type RelaEntry = StructValue<typeof RelaDef>
export type NoteHeader = StructValue<typeof NoteHeaderDef>

export const ELFCLASS64 = 2
export const ELFDATA2LSB = 1
export const EV_CURRENT = 1
/** The kernel reads at most one page of program headers (fs/binfmt_elf.c load_elf_phdrs). */
export const MAX_PHNUM = Math.floor(4096 / ProgramHeaderDef.size)

export const ET = {ET_NONE: 0, ET_REL: 1, ET_EXEC: 2, ET_DYN: 3, ET_CORE: 4} as const
export const EtNames = defineConstants(ET)

export const EM = {EM_X86_64: 62, EM_AARCH64: 183} as const
export const EmNames = defineConstants(EM)

export const PT = {
  PT_NULL: 0, PT_LOAD: 1, PT_DYNAMIC: 2, PT_INTERP: 3, PT_NOTE: 4, PT_SHLIB: 5, PT_PHDR: 6, PT_TLS: 7,
  PT_GNU_EH_FRAME: 0x6474e550, PT_GNU_STACK: 0x6474e551, PT_GNU_RELRO: 0x6474e552, PT_GNU_PROPERTY: 0x6474e553,
  PT_AARCH64_MEMTAG_MTE: 0x70000002,
} as const
export const PtNames = defineConstants(PT)

export const PF = {PF_X: 1, PF_W: 2, PF_R: 4} as const

export const SHT = {
  SHT_NULL: 0, SHT_PROGBITS: 1, SHT_SYMTAB: 2, SHT_STRTAB: 3, SHT_RELA: 4, SHT_HASH: 5, SHT_DYNAMIC: 6,
  SHT_NOTE: 7, SHT_NOBITS: 8, SHT_REL: 9, SHT_SHLIB: 10, SHT_DYNSYM: 11, SHT_INIT_ARRAY: 14,
  SHT_FINI_ARRAY: 15, SHT_PREINIT_ARRAY: 16, SHT_GROUP: 17, SHT_SYMTAB_SHNDX: 18, SHT_RELR: 19,
  SHT_GNU_HASH: 0x6ffffff6, SHT_GNU_verdef: 0x6ffffffd, SHT_GNU_verneed: 0x6ffffffe, SHT_GNU_versym: 0x6fffffff,
  SHT_X86_64_UNWIND: 0x70000001,
} as const
export const ShtNames = defineConstants(SHT)

export const SHF = {SHF_WRITE: 1n, SHF_ALLOC: 2n, SHF_EXECINSTR: 4n, SHF_MERGE: 0x10n, SHF_STRINGS: 0x20n,
  SHF_INFO_LINK: 0x40n, SHF_TLS: 0x400n} as const

export const SHN_UNDEF = 0
export const SHN_LORESERVE = 0xff00
export const SHN_XINDEX = 0xffff

export const DT = {
  DT_NULL: 0, DT_NEEDED: 1, DT_PLTRELSZ: 2, DT_PLTGOT: 3, DT_HASH: 4, DT_STRTAB: 5, DT_SYMTAB: 6, DT_RELA: 7,
  DT_RELASZ: 8, DT_RELAENT: 9, DT_STRSZ: 10, DT_SYMENT: 11, DT_INIT: 12, DT_FINI: 13, DT_SONAME: 14,
  DT_RPATH: 15, DT_SYMBOLIC: 16, DT_REL: 17, DT_RELSZ: 18, DT_RELENT: 19, DT_PLTREL: 20, DT_DEBUG: 21,
  DT_TEXTREL: 22, DT_JMPREL: 23, DT_BIND_NOW: 24, DT_INIT_ARRAY: 25, DT_FINI_ARRAY: 26, DT_INIT_ARRAYSZ: 27,
  DT_FINI_ARRAYSZ: 28, DT_RUNPATH: 29, DT_FLAGS: 30, DT_PREINIT_ARRAY: 32, DT_PREINIT_ARRAYSZ: 33,
  DT_SYMTAB_SHNDX: 34, DT_RELRSZ: 35, DT_RELR: 36, DT_RELRENT: 37,
  DT_GNU_HASH: 0x6ffffef5, DT_VERSYM: 0x6ffffff0, DT_RELACOUNT: 0x6ffffff9, DT_RELCOUNT: 0x6ffffffa,
  DT_FLAGS_1: 0x6ffffffb, DT_VERDEF: 0x6ffffffc, DT_VERDEFNUM: 0x6ffffffd, DT_VERNEED: 0x6ffffffe,
  DT_VERNEEDNUM: 0x6fffffff,
} as const
export const DtNames = defineConstants(DT)

export const DF_BIND_NOW = 0x8n
export const DF_1_NOW = 0x1n
export const DF_1_PIE = 0x08000000n

export const NT_GNU_ABI_TAG = 1
export const NT_GNU_BUILD_ID = 3
export const NT_GNU_PROPERTY_TYPE_0 = 5

export const R_X86_64 = {
  R_X86_64_NONE: 0, R_X86_64_64: 1, R_X86_64_PC32: 2, R_X86_64_GOT32: 3, R_X86_64_PLT32: 4, R_X86_64_COPY: 5,
  R_X86_64_GLOB_DAT: 6, R_X86_64_JUMP_SLOT: 7, R_X86_64_RELATIVE: 8, R_X86_64_DTPMOD64: 16,
  R_X86_64_DTPOFF64: 17, R_X86_64_TPOFF64: 18, R_X86_64_IRELATIVE: 37,
} as const
export const R_AARCH64 = {
  R_AARCH64_NONE: 0, R_AARCH64_ABS64: 257, R_AARCH64_COPY: 1024, R_AARCH64_GLOB_DAT: 1025,
  R_AARCH64_JUMP_SLOT: 1026, R_AARCH64_RELATIVE: 1027, R_AARCH64_TLS_DTPMOD: 1028, R_AARCH64_TLS_DTPREL: 1029,
  R_AARCH64_TLS_TPREL: 1030, R_AARCH64_TLSDESC: 1031, R_AARCH64_IRELATIVE: 1032,
} as const
export const RelocNamesX86_64 = defineConstants(R_X86_64)
export const RelocNamesAarch64 = defineConstants(R_AARCH64)
/** Both machines use 0 for "no relocation" (R_X86_64_NONE, R_AARCH64_NONE / R_ARM_NONE). */
export const R_NONE = 0
