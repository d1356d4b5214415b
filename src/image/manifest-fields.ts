/**
 * The manifest v1 records (images/README.md), declared once as field tables; the encoder and
 * decoder in manifest.ts derive from these. The C reader in native/ is written against the
 * same layout: change both together (and the version) or neither.
 */
import {defineStruct, type StructValue} from '../binary/field-table.js'

export const MANIFEST_MAGIC = 'IMGDMNF1'
export const MANIFEST_VERSION = 1
/** "str" fields: 0xffffffff means no string. */
export const NO_STRING = 0xffffffff
/** PT_NOTE of an ELF image: owner "IMGDUMP", type "IMG1" little-endian. */
export const MANIFEST_NOTE_OWNER = 'IMGDUMP'
export const MANIFEST_NOTE_TYPE = 0x31474d49

export const ManifestHeaderDef = defineStruct('imgdump_manifest', [
  {name: 'magic', width: 8, kind: 'bytes', doc: '"IMGDMNF1"'},
  {name: 'version', width: 4, doc: '1'},
  {name: 'header_size', width: 4, doc: '168'},
  {name: 'total_size', width: 4, doc: 'bytes of the whole manifest'},
  {name: 'crc32c', width: 4, doc: 'CRC32C of the whole manifest with this field zero'},
  {name: 'generation', width: 8, doc: 'equals the heap header generation'},
  {name: 'created_ns', width: 8, doc: 'creation time, Unix nanoseconds'},
  {name: 'heap_header', width: 8, doc: 'address of the heap header (heap base)'},
  {name: 'load_bias', width: 8, doc: 'load bias of the executable at save time (0 for ET_EXEC)'},
  {name: 'stack_limit', width: 8, doc: 'soft RLIMIT_STACK the layout was pinned with'},
  {name: 'flags', width: 4, doc: 'bit 0 PIE, bit 1 randomisation off, bit 2 stack rlimit unlimited'},
  {name: 'format', width: 4, doc: '1 ELF, 2 Mach-O'},
  {name: 'n_libraries', width: 4, doc: 'library records'},
  {name: 'n_segments', width: 4, doc: 'segment records'},
  {name: 'n_payloads', width: 4, doc: 'payload records'},
  {name: 'n_undo', width: 4, doc: 'undo records'},
  {name: 'blob_size', width: 4, doc: 'bytes of the blob area'},
  {name: 'runtime_path', width: 4, doc: 'str: original runtime executable path'},
  {name: 'runtime_digest', width: 32, kind: 'bytes', doc: 'SHA-256 of the original executable'},
  {name: 'original_size', width: 8, doc: 'size of the original executable'},
  {name: 'parent_digest', width: 32, kind: 'bytes', doc: 'SHA-256 of the manifest of the image the saving process was restored from; zeros when it started fresh'},
] as const)

export const LibraryRecordDef = defineStruct('imgdump_manifest_library', [
  {name: 'base', width: 8, doc: 'load address (dlpi_addr)'},
  {name: 'path', width: 4, doc: 'str'},
  {name: 'build_id', width: 4, doc: 'str: lower-case hex GNU build-id, or none'},
  {name: 'reserved', width: 8, doc: '0'},
] as const)

export const SegmentRecordDef = defineStruct('imgdump_manifest_segment', [
  {name: 'role', width: 4, doc: '1 data, 2 heap run, 3 region, 4 heap reservation'},
  {name: 'tracking', width: 4, doc: 'how the save knew written pages: 0 not recorded (older images), 1 none (full save), 2 pagemap, 3 uffd'},
  {name: 'address', width: 8, doc: 'run-time virtual address'},
  {name: 'mem_size', width: 8, doc: 'bytes in memory'},
  {name: 'file_offset', width: 8, doc: 'offset in the image file'},
  {name: 'file_size', width: 8, doc: 'bytes taken from the file'},
  {name: 'pages_written', width: 8, doc: 'with tracking: 4 KiB pages of this segment written from memory; the rest came from the previous image'},
] as const)

export const PayloadRecordDef = defineStruct('imgdump_manifest_payload', [
  {name: 'file_offset', width: 8, doc: 'offset in the image file'},
  {name: 'length', width: 8, doc: 'bytes'},
  {name: 'crc32c', width: 4, doc: 'CRC32C of those bytes'},
  {name: 'source', width: 4, doc: '1 written from memory, 2 copied from the original executable, 3 patched bytes of the original, 4 program header table'},
] as const)

export const UndoRecordDef = defineStruct('imgdump_manifest_undo', [
  {name: 'file_offset', width: 8, doc: 'offset in the original executable (and the image)'},
  {name: 'length', width: 4, doc: 'bytes'},
  {name: 'blob_offset', width: 4, doc: 'where the original bytes are kept in the blob'},
] as const)

export type ManifestHeaderRecord = StructValue<typeof ManifestHeaderDef>
export type LibraryRecord = StructValue<typeof LibraryRecordDef>
export type SegmentRecord = StructValue<typeof SegmentRecordDef>
export type PayloadRecord = StructValue<typeof PayloadRecordDef>
export type UndoRecord = StructValue<typeof UndoRecordDef>

export const SEGMENT_ROLE = {data: 1, heap: 2, region: 3, reservation: 4} as const
/** Segment `tracking` codes; 0 means the image predates the field. */
export const SEGMENT_TRACKING = {none: 1, pagemap: 2, uffd: 3} as const
export type SegmentRole = keyof typeof SEGMENT_ROLE
/** 3: bytes of the original executable that imgdump patched (one per undo record); 4: the moved program header table. */
export const PAYLOAD_SOURCE = {memory: 1, original: 2, patched: 3, headers: 4} as const
export type PayloadSource = keyof typeof PAYLOAD_SOURCE
export const MANIFEST_FLAGS = {pie: 1, noRandomize: 2, stackUnlimited: 4} as const
export const MANIFEST_FORMAT = {elf: 1, macho: 2} as const
