/**
 * The heap segment's on-disk structures as data (DESIGN §9 rule 1), mirroring
 * native/src/heap-header.h and native/src/alloc-state.h; specified in docs/heap-layout.md.
 * The C side asserts the sizes with _Static_assert; test/heap checks these tables against
 * a live heap built through koffi.
 */
import {defineStruct, type StructValue} from '../binary/field-table.js'

export const HEAP_MAGIC = 0x50414548504d4449n // "IDMPHEAP" little-endian
export const HEAP_LAYOUT_VERSION = 1
export const ALLOC_STATE_VERSION = 1

/** The fixed scalar part of the header (offset 0). */
export const HeapHeaderFixed = defineStruct('heap header', [
  {name: 'magic', width: 8, doc: 'HEAP_MAGIC'},
  {name: 'layoutVersion', width: 4, doc: 'HEAP_LAYOUT_VERSION'},
  {name: 'headerSize', width: 4, doc: 'bytes from base to the first chunk (page multiple)'},
  {name: 'base', width: 8, doc: 'address of the header itself'},
  {name: 'reserve', width: 8, doc: 'bytes reserved for the whole range'},
  {name: 'brk', width: 8, doc: 'emulated break = top chunk + 16; a save writes [base, brk)'},
  {name: 'committed', width: 8, doc: 'end of the writable part when saved'},
  {name: 'generation', width: 8, doc: 'generation of the image this heap was saved as; 0 fresh'},
  {name: 'saveInProgress', width: 4, doc: '0 in every written copy'},
  {name: 'lock', width: 4, doc: 'allocator lock word; 0 in every written copy'},
  {name: 'nOnSave', width: 4, doc: 'registered on-save hooks'},
  {name: 'nOnRestore', width: 4, doc: 'registered on-restore hooks'},
  {name: 'nExterns', width: 4, doc: 'used extern slots'},
  {name: 'nRegions', width: 4, doc: 'registered regions'},
] as const)

export const Hook = defineStruct('hook', [
  {name: 'fn', width: 8, doc: 'function address'},
  {name: 'arg', width: 8, doc: 'its argument'},
] as const)

export const ExternSlot = defineStruct('extern slot', [
  {name: 'value', width: 8, doc: 'resolved address (re-resolved in every restored process)'},
  {name: 'symbol', width: 8, doc: 'address of the NUL-terminated symbol name (in the heap)'},
] as const)

export const Region = defineStruct('region', [
  {name: 'addr', width: 8, doc: 'page-aligned start'},
  {name: 'len', width: 8, doc: 'page-multiple length'},
] as const)

export const Root = defineStruct('root', [{name: 'value', width: 8, doc: 'root pointer'}] as const)

/** Tables following the fixed part: header offset, capacity, entry structure. */
export const HEADER_TABLES = {
  roots: {offset: 80, count: 64, entry: Root},
  onSave: {offset: 592, count: 32, entry: Hook},
  onRestore: {offset: 1104, count: 32, entry: Hook},
  externs: {offset: 1616, count: 64, entry: ExternSlot},
  regions: {offset: 2640, count: 16, entry: Region},
} as const

export const AllocLocation = defineStruct('allocator location', [
  {name: 'allocStateOffset', width: 8, doc: 'offset from base of the allocator state'},
  {name: 'allocStateSize', width: 8, doc: 'its size in bytes'},
] as const)
export const ALLOC_LOCATION_OFFSET = 2896
/** Size of the C struct imgdump_heap_header (fixed part + tables + location). */
export const HEAP_HEADER_STRUCT_SIZE = 2912

export const AllocStateFixed = defineStruct('allocator state', [
  {name: 'version', width: 4, doc: 'ALLOC_STATE_VERSION'},
  {name: 'debug', width: 4, doc: 'per-run diagnostics setting (meaningless in an image)'},
  {name: 'firstChunk', width: 8, doc: 'address of the first chunk (base + headerSize)'},
  {name: 'top', width: 8, doc: 'address of the top chunk (end of the chunk walk)'},
  {name: 'cleanFrom', width: 8, doc: 'bytes from here to committed are known zero'},
  {name: 'adoptedEnd', width: 8, doc: 'end of the part mapped from an image file (0 fresh)'},
  {name: 'quickBytes', width: 8, doc: 'bytes parked in quick lists'},
  {name: 'inUseBytes', width: 8, doc: 'bytes of chunks handed out'},
  {name: 'peakInUse', width: 8, doc: 'high-water mark of inUseBytes'},
  {name: 'nMalloc', width: 8, doc: 'allocations served'},
  {name: 'nFree', width: 8, doc: 'frees'},
  {name: 'nGrow', width: 8, doc: 'commit steps'},
] as const)
export const ALLOC_BITMAP_OFFSET = 88
export const ALLOC_QUICK_OFFSET = 120
export const ALLOC_BINS_OFFSET = 632
export const N_QUICK = 64
export const N_BINS = 256
export const ALLOC_BINS_END = 2680
/** Registry of per-thread caches (chunks parked there are QUICK, i.e. free, in the walk). */
export const ALLOC_TCACHES_OFFSET = 2680
export const ALLOC_STATE_SIZE = 2696

/** Boundary tag at the start of every chunk; the payload starts right after it. */
export const ChunkHeader = defineStruct('chunk header', [
  {name: 'prevSize', width: 8, doc: 'size of the previous chunk when it is free (PINUSE clear)'},
  {name: 'head', width: 8, doc: 'size | flags'},
] as const)

export const CHUNK_FLAGS = {
  PINUSE: 1, // the previous chunk is in use or quick-listed
  CINUSE: 2, // this chunk is in use or quick-listed
  QUICK: 4, // this chunk is free, parked in a quick list
} as const
/** The low bits of `head` that hold flags; the rest is the chunk's size. */
export const CHUNK_FLAG_BITS = 16
export const CHUNK_MIN = 32n
/** An in-use chunk's payload runs on into the next chunk's prevSize word. */
export const CHUNK_OVERHEAD = 8n

export type HeapHeaderFixedValue = StructValue<typeof HeapHeaderFixed>
export type AllocStateValue = StructValue<typeof AllocStateFixed>
