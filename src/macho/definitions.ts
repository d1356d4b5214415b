/**
 * Mach-O 64 and fat definitions (from <mach-o/loader.h>, <mach-o/fat.h>,
 * <mach-o/fixup-chains.h>), as data: constants and field tables.
 */
import {type Endian, type FieldDef, defineStruct as defineStructWith} from '../binary/field-table.js'
import {truncated} from './errors.js'

/** Every Mach-O structure that runs past the end of its buffer is MACHO_TRUNCATED. */
const defineStruct = <const F extends readonly FieldDef[]>(name: string, fields: F, endian: Endian = 'le') =>
  defineStructWith(name, fields, {endian, truncated})

export const MH_MAGIC_64 = 0xfeedfacf
export const MH_CIGAM_64 = 0xcffaedfe
export const MH_MAGIC = 0xfeedface
export const FAT_MAGIC = 0xcafebabe
export const FAT_MAGIC_64 = 0xcafebabf
export const MH_EXECUTE = 2

export const CPU_TYPE_X86_64 = 0x01000007
export const CPU_TYPE_ARM64 = 0x0100000c
export const CPU_NAMES: Record<number, string> = {[CPU_TYPE_X86_64]: 'x86_64', [CPU_TYPE_ARM64]: 'arm64'}
/** Page size dyld and the kernel use per architecture (arm64 macOS: 16 KiB). */
export function pageSizeFor(cputype: number): bigint { return cputype === CPU_TYPE_ARM64 ? 0x4000n : 0x1000n }

export const LC_REQ_DYLD = 0x80000000
/** Load command numbers and names: the single table for name lookups. */
export const LC = {
  LC_SEGMENT_64: 0x19, LC_SYMTAB: 0x2, LC_DYSYMTAB: 0xb, LC_LOAD_DYLIB: 0xc, LC_ID_DYLIB: 0xd,
  LC_LOAD_DYLINKER: 0xe, LC_ID_DYLINKER: 0xf, LC_LOAD_WEAK_DYLIB: 0x18 + LC_REQ_DYLD, LC_UUID: 0x1b,
  LC_RPATH: 0x1c + LC_REQ_DYLD, LC_CODE_SIGNATURE: 0x1d, LC_SEGMENT_SPLIT_INFO: 0x1e,
  LC_REEXPORT_DYLIB: 0x1f + LC_REQ_DYLD, LC_LAZY_LOAD_DYLIB: 0x20, LC_DYLD_INFO: 0x22,
  LC_DYLD_INFO_ONLY: 0x22 + LC_REQ_DYLD, LC_LOAD_UPWARD_DYLIB: 0x23 + LC_REQ_DYLD,
  LC_VERSION_MIN_MACOSX: 0x24, LC_FUNCTION_STARTS: 0x26, LC_DYLD_ENVIRONMENT: 0x27,
  LC_MAIN: 0x28 + LC_REQ_DYLD, LC_DATA_IN_CODE: 0x29, LC_SOURCE_VERSION: 0x2a,
  LC_DYLIB_CODE_SIGN_DRS: 0x2b, LC_LINKER_OPTIMIZATION_HINT: 0x2e, LC_NOTE: 0x31,
  LC_BUILD_VERSION: 0x32, LC_DYLD_EXPORTS_TRIE: 0x33 + LC_REQ_DYLD, LC_DYLD_CHAINED_FIXUPS: 0x34 + LC_REQ_DYLD,
} as const
export const LC_NAMES: Record<number, string> = Object.fromEntries(Object.entries(LC).map(([k, v]) => [v >>> 0, k]))

export const MachHeader64 = defineStruct('mach_header_64', [
  {name: 'magic', width: 4, doc: 'MH_MAGIC_64'},
  {name: 'cputype', width: 4, doc: 'CPU_TYPE_*'},
  {name: 'cpusubtype', width: 4, doc: 'CPU subtype and capability bits'},
  {name: 'filetype', width: 4, doc: 'MH_EXECUTE, MH_DYLIB, …'},
  {name: 'ncmds', width: 4, doc: 'number of load commands'},
  {name: 'sizeofcmds', width: 4, doc: 'bytes of all load commands'},
  {name: 'flags', width: 4, doc: 'MH_* flags'},
  {name: 'reserved', width: 4, doc: 'reserved'},
] as const)

export const LoadCommandHeader = defineStruct('load_command', [
  {name: 'cmd', width: 4, doc: 'LC_*'},
  {name: 'cmdsize', width: 4, doc: 'total size of the command, multiple of 8'},
] as const)

const lcHead = [
  {name: 'cmd', width: 4, doc: 'LC_*'},
  {name: 'cmdsize', width: 4, doc: 'total size of the command'},
] as const

export const SegmentCommand64 = defineStruct('segment_command_64', [
  ...lcHead,
  {name: 'segname', width: 16, kind: 'name', doc: 'segment name'},
  {name: 'vmaddr', width: 8, doc: 'memory address'},
  {name: 'vmsize', width: 8, doc: 'memory size (≥ filesize; the rest is zero-filled)'},
  {name: 'fileoff', width: 8, doc: 'file offset of the mapped bytes'},
  {name: 'filesize', width: 8, doc: 'bytes mapped from the file'},
  {name: 'maxprot', width: 4, doc: 'maximum VM protection'},
  {name: 'initprot', width: 4, doc: 'initial VM protection'},
  {name: 'nsects', width: 4, doc: 'number of section_64 records following'},
  {name: 'flags', width: 4, doc: 'SG_* flags'},
] as const)

export const Section64 = defineStruct('section_64', [
  {name: 'sectname', width: 16, kind: 'name', doc: 'section name'},
  {name: 'segname', width: 16, kind: 'name', doc: 'segment the section belongs to'},
  {name: 'addr', width: 8, doc: 'memory address'},
  {name: 'size', width: 8, doc: 'size in bytes'},
  {name: 'offset', width: 4, doc: 'file offset (0 for zero-fill)'},
  {name: 'align', width: 4, doc: 'alignment, power of two'},
  {name: 'reloff', width: 4, doc: 'file offset of relocations'},
  {name: 'nreloc', width: 4, doc: 'number of relocations'},
  {name: 'flags', width: 4, doc: 'type (low byte) and attributes'},
  {name: 'reserved1', width: 4, doc: 'indirect symbol index or count'},
  {name: 'reserved2', width: 4, doc: 'stub size or count'},
  {name: 'reserved3', width: 4, doc: 'reserved'},
] as const)
export const S_ZEROFILL = 0x1, S_GB_ZEROFILL = 0xc, S_THREAD_LOCAL_ZEROFILL = 0x12
export const isZerofill = (flags: number): boolean => [S_ZEROFILL, S_GB_ZEROFILL, S_THREAD_LOCAL_ZEROFILL].includes(flags & 0xff)

export const SymtabCommand = defineStruct('symtab_command', [
  ...lcHead,
  {name: 'symoff', width: 4, doc: 'file offset of the nlist_64 array'},
  {name: 'nsyms', width: 4, doc: 'number of symbols'},
  {name: 'stroff', width: 4, doc: 'file offset of the string table'},
  {name: 'strsize', width: 4, doc: 'string table size'},
] as const)

const dysym = (name: string, doc: string) => ({name, width: 4, doc} as const)
export const DysymtabCommand = defineStruct('dysymtab_command', [
  ...lcHead,
  dysym('ilocalsym', 'index of local symbols'), dysym('nlocalsym', 'number of local symbols'),
  dysym('iextdefsym', 'index of defined external symbols'), dysym('nextdefsym', 'number of them'),
  dysym('iundefsym', 'index of undefined symbols'), dysym('nundefsym', 'number of them'),
  dysym('tocoff', 'file offset of table of contents'), dysym('ntoc', 'entries'),
  dysym('modtaboff', 'file offset of module table'), dysym('nmodtab', 'entries'),
  dysym('extrefsymoff', 'file offset of referenced symbols'), dysym('nextrefsyms', 'entries'),
  dysym('indirectsymoff', 'file offset of the indirect symbol table'), dysym('nindirectsyms', 'entries'),
  dysym('extreloff', 'file offset of external relocations'), dysym('nextrel', 'entries'),
  dysym('locreloff', 'file offset of local relocations'), dysym('nlocrel', 'entries'),
] as const)

const dyldInfo = (name: string, doc: string) => ({name, width: 4, doc} as const)
export const DyldInfoCommand = defineStruct('dyld_info_command', [
  ...lcHead,
  dyldInfo('rebase_off', 'rebase opcodes'), dyldInfo('rebase_size', ''),
  dyldInfo('bind_off', 'bind opcodes'), dyldInfo('bind_size', ''),
  dyldInfo('weak_bind_off', 'weak bind opcodes'), dyldInfo('weak_bind_size', ''),
  dyldInfo('lazy_bind_off', 'lazy bind opcodes (offsets are baked into __stub_helper)'), dyldInfo('lazy_bind_size', ''),
  dyldInfo('export_off', 'exports trie'), dyldInfo('export_size', ''),
] as const)

export const LinkeditDataCommand = defineStruct('linkedit_data_command', [
  ...lcHead,
  {name: 'dataoff', width: 4, doc: 'file offset of the data in __LINKEDIT'},
  {name: 'datasize', width: 4, doc: 'size of the data'},
] as const)

/** dylib_command, dylinker_command and rpath_command: a fixed part then a string at `name`. */
export const DylibCommand = defineStruct('dylib_command', [
  ...lcHead,
  {name: 'name', width: 4, doc: 'offset of the path string from the command start'},
  {name: 'timestamp', width: 4, doc: 'build time stamp'},
  {name: 'current_version', width: 4, doc: 'X.Y.Z as 0xXXXXYYZZ'},
  {name: 'compatibility_version', width: 4, doc: 'X.Y.Z as 0xXXXXYYZZ'},
] as const)
export const StringCommand = defineStruct('dylinker_command', [
  ...lcHead,
  {name: 'name', width: 4, doc: 'offset of the string from the command start'},
] as const)

export const UuidCommand = defineStruct('uuid_command', [
  ...lcHead,
  {name: 'uuid', width: 16, kind: 'bytes', doc: '128-bit UUID'},
] as const)

export const BuildVersionCommand = defineStruct('build_version_command', [
  ...lcHead,
  {name: 'platform', width: 4, doc: 'PLATFORM_MACOS = 1, …'},
  {name: 'minos', width: 4, doc: 'minimum OS X.Y.Z as 0xXXXXYYZZ'},
  {name: 'sdk', width: 4, doc: 'SDK X.Y.Z'},
  {name: 'ntools', width: 4, doc: 'number of build_tool_version records following'},
] as const)
export const BuildToolVersion = defineStruct('build_tool_version', [
  {name: 'tool', width: 4, doc: 'TOOL_CLANG = 1, TOOL_SWIFT = 2, TOOL_LD = 3, TOOL_LLD = 4'},
  {name: 'version', width: 4, doc: 'X.Y.Z'},
] as const)

export const VersionMinCommand = defineStruct('version_min_command', [
  ...lcHead,
  {name: 'version', width: 4, doc: 'X.Y.Z'},
  {name: 'sdk', width: 4, doc: 'X.Y.Z'},
] as const)

export const EntryPointCommand = defineStruct('entry_point_command', [
  ...lcHead,
  {name: 'entryoff', width: 8, doc: 'file (__TEXT) offset of main()'},
  {name: 'stacksize', width: 8, doc: 'initial stack size, 0 = default'},
] as const)

export const SourceVersionCommand = defineStruct('source_version_command', [
  ...lcHead,
  {name: 'version', width: 8, doc: 'A.B.C.D.E packed 24.10.10.10.10 bits'},
] as const)

export const NoteCommand = defineStruct('note_command', [
  ...lcHead,
  {name: 'data_owner', width: 16, kind: 'name', doc: 'owner name'},
  {name: 'offset', width: 8, doc: 'file offset of the note data'},
  {name: 'size', width: 8, doc: 'size of the note data'},
] as const)

export const FatHeader = defineStruct('fat_header', [
  {name: 'magic', width: 4, doc: 'FAT_MAGIC or FAT_MAGIC_64'},
  {name: 'nfat_arch', width: 4, doc: 'number of slices'},
] as const, 'be')
export const FatArch = defineStruct('fat_arch', [
  {name: 'cputype', width: 4, doc: 'CPU_TYPE_*'},
  {name: 'cpusubtype', width: 4, doc: 'CPU subtype'},
  {name: 'offset', width: 4, doc: 'file offset of the slice'},
  {name: 'size', width: 4, doc: 'slice size'},
  {name: 'align', width: 4, doc: 'alignment as a power of two'},
] as const, 'be')
export const FatArch64 = defineStruct('fat_arch_64', [
  {name: 'cputype', width: 4, doc: 'CPU_TYPE_*'},
  {name: 'cpusubtype', width: 4, doc: 'CPU subtype'},
  {name: 'offset', width: 8, doc: 'file offset of the slice'},
  {name: 'size', width: 8, doc: 'slice size'},
  {name: 'align', width: 4, doc: 'alignment as a power of two'},
  {name: 'reserved', width: 4, doc: 'reserved'},
] as const, 'be')

export const ChainedFixupsHeader = defineStruct('dyld_chained_fixups_header', [
  {name: 'fixups_version', width: 4, doc: '0'},
  {name: 'starts_offset', width: 4, doc: 'offset of dyld_chained_starts_in_image'},
  {name: 'imports_offset', width: 4, doc: 'offset of the imports table'},
  {name: 'symbols_offset', width: 4, doc: 'offset of the symbol strings'},
  {name: 'imports_count', width: 4, doc: 'number of imports'},
  {name: 'imports_format', width: 4, doc: 'DYLD_CHAINED_IMPORT*'},
  {name: 'symbols_format', width: 4, doc: '0 = uncompressed'},
] as const)
export const ChainedStartsInSegment = defineStruct('dyld_chained_starts_in_segment', [
  {name: 'size', width: 4, doc: 'size of this structure including page_start[]'},
  {name: 'page_size', width: 2, doc: '0x1000 or 0x4000'},
  {name: 'pointer_format', width: 2, doc: 'DYLD_CHAINED_PTR_*'},
  {name: 'segment_offset', width: 8, doc: 'offset of the segment from the image base'},
  {name: 'max_valid_pointer', width: 4, doc: 'for 32-bit formats'},
  {name: 'page_count', width: 2, doc: 'entries in page_start[]'},
] as const)
export const DYLD_CHAINED_PTR_START_NONE = 0xffff
export const DYLD_CHAINED_PTR_START_MULTI = 0x8000

/** Code signing blobs (<kern/cs_blobs.h>), big-endian. */
export const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0
export const CSMAGIC_CODEDIRECTORY = 0xfade0c02
export const CSMAGIC_REQUIREMENTS = 0xfade0c01
export const CSMAGIC_BLOBWRAPPER = 0xfade0b01
export const CSSLOT_CODEDIRECTORY = 0, CSSLOT_INFOSLOT = 1, CSSLOT_REQUIREMENTS = 2, CSSLOT_SIGNATURESLOT = 0x10000
export const CSSLOT_ALTERNATE_CODEDIRECTORIES = 0x1000
export const CS_ADHOC = 0x2, CS_LINKER_SIGNED = 0x20000, CS_EXECSEG_MAIN_BINARY = 0x1
export const CS_SUPPORTSEXECSEG = 0x20400
export const CS_HASHTYPE_SHA256 = 2

export const SuperBlobHeader = defineStruct('CS_SuperBlob', [
  {name: 'magic', width: 4, doc: 'CSMAGIC_EMBEDDED_SIGNATURE'},
  {name: 'length', width: 4, doc: 'total length'},
  {name: 'count', width: 4, doc: 'number of blob indexes following'},
] as const, 'be')
export const BlobIndex = defineStruct('CS_BlobIndex', [
  {name: 'type', width: 4, doc: 'CSSLOT_*'},
  {name: 'offset', width: 4, doc: 'offset of the blob from the superblob start'},
] as const, 'be')
export const CodeDirectory = defineStruct('CS_CodeDirectory', [
  {name: 'magic', width: 4, doc: 'CSMAGIC_CODEDIRECTORY'},
  {name: 'length', width: 4, doc: 'total length of the directory'},
  {name: 'version', width: 4, doc: '0x20400 = supports exec segment fields'},
  {name: 'flags', width: 4, doc: 'CS_ADHOC | CS_LINKER_SIGNED …'},
  {name: 'hashOffset', width: 4, doc: 'offset of code slot 0'},
  {name: 'identOffset', width: 4, doc: 'offset of the identifier string'},
  {name: 'nSpecialSlots', width: 4, doc: 'special slots before hashOffset'},
  {name: 'nCodeSlots', width: 4, doc: 'one hash per page up to codeLimit'},
  {name: 'codeLimit', width: 4, doc: 'bytes covered (= signature file offset)'},
  {name: 'hashSize', width: 1, doc: '32 for SHA-256'},
  {name: 'hashType', width: 1, doc: '2 = SHA-256'},
  {name: 'platform', width: 1, doc: 'platform binary id'},
  {name: 'pageSize', width: 1, doc: 'log2 of the page size'},
  {name: 'spare2', width: 4, doc: '0'},
  {name: 'scatterOffset', width: 4, doc: 'v0x20100'},
  {name: 'teamOffset', width: 4, doc: 'v0x20200'},
  {name: 'spare3', width: 4, doc: 'v0x20300'},
  {name: 'codeLimit64', width: 8, doc: 'v0x20300'},
  {name: 'execSegBase', width: 8, doc: 'v0x20400: file offset of the executable segment'},
  {name: 'execSegLimit', width: 8, doc: 'v0x20400: its size'},
  {name: 'execSegFlags', width: 8, doc: 'v0x20400: CS_EXECSEG_*'},
] as const, 'be')

export const Nlist64 = defineStruct('nlist_64', [
  {name: 'n_strx', width: 4, doc: 'offset of the name in the string table'},
  {name: 'n_type', width: 1, doc: 'N_STAB | N_PEXT | N_TYPE | N_EXT bits'},
  {name: 'n_sect', width: 1, doc: 'section ordinal (1-based) or NO_SECT'},
  {name: 'n_desc', width: 2, doc: 'library ordinal, reference type, flags'},
  {name: 'n_value', width: 8, doc: 'address or value'},
] as const)
