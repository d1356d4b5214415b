/**
 * What `imgdump inspect` shows for an image: the manifest (generation, parent, creation,
 * runtime, libraries, segments), compatibility with this machine (the library rule restore
 * enforces, address layout pinnable) and a heap summary from the heap header.
 * Returns a JSON-ready object (bigints as hex strings) and its text rendering.
 */
import fs from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {ADDR_NO_RANDOMIZE, currentPersonality, setPersonality} from '../native/libc.js'
import {hex} from '../binary/hex.js'
import {fdSource} from '../elf/byte-source.js'
import {ElfScan} from '../elf/scan.js'
import {MANIFEST_FLAGS, MANIFEST_NOTE_OWNER, MANIFEST_NOTE_TYPE} from './manifest-fields.js'
import {findManifest} from './original-executable.js'
import {heapHeaderFields, heapSegment} from './verify-image.js'
import {CHUNK_OVERHEAD, ChunkCursor, fdHeapSource, HEAP_MAGIC, readHeapHeader as readFullHeapHeader} from '../heap/index.js'
import {checkLibrary, type LibraryCheck} from './image-check.js'
import type {Manifest} from './manifest.js'

/** One library's compatibility with this machine: the check restore enforces (image-check.ts). */
export type LibraryCompat = LibraryCheck

export interface ImageDescription {
  path: string
  format: 'elf'
  generation: string
  parent: string | null
  created: string
  runtime: {path: string | null; sha256: string; originalSize: string}
  loadBias: string
  heapHeader: string
  pinning: {pie: boolean; noRandomize: boolean; stackUnlimited: boolean; stackLimit: string}
  /** `tracking`/`pagesWritten`: how the save that wrote the image knew written pages (absent in older images). */
  segments: {role: string; address: string; memSize: string; fileOffset: string; fileSize: string; tracking?: string; pagesWritten?: number}[]
  payloads: {count: number; fromMemory: string; fromOriginal: string}
  undoRecords: number
  libraries: LibraryCompat[]
  compatibility: {ok: boolean; pinningPossible: boolean; problems: string[]}
  heap: {magic: boolean; base: string; brk: string; generation: string; usedBytes: string; allocations: HeapAllocations | null; problem?: string} | null
}

export interface SizeClass {upTo: string; used: number; usedBytes: string}
export interface HeapAllocations {chunks: number; used: number; usedBytes: string; free: number; freeBytes: string; bySizeClass: SizeClass[]}

/**
 * Live allocations by size class (powers of two of the usable size), from src/heap's chunk
 * walk over the already open image (`fd`), with the allocation-free cursor.
 */
function heapAllocations(fd: number, m: Manifest): HeapAllocations {
  const seg = heapSegment(m)
  if (!seg) throw new ImgdumpError('parse', 'IMAGE_NO_HEAP_HEADER', `no heap segment holds the heap header at ${hex(m.heapHeader)}`)
  const skip = m.heapHeader - seg.address
  const src = fdHeapSource(fd, seg.fileOffset + skip, m.heapHeader, seg.fileSize - skip)
  const cur = new ChunkCursor(src, readFullHeapHeader(src))
  const classes = new Map<number, {used: number; bytes: number}>()
  const out = {chunks: 0, used: 0, usedBytes: 0, free: 0, freeBytes: 0}
  const overhead = Number(CHUNK_OVERHEAD)
  while (cur.next()) {
    out.chunks++
    if (cur.state !== 0) { out.free++; out.freeBytes += cur.size; continue } // free or quick-listed
    const usable = cur.size - overhead
    out.used++
    out.usedBytes += usable
    let k = 16
    while (k < usable) k *= 2
    const e = classes.get(k) ?? {used: 0, bytes: 0}
    e.used++
    e.bytes += usable
    classes.set(k, e)
  }
  const bySizeClass = [...classes.entries()].sort((x, y) => x[0] - y[0])
    .map(([k, e]) => ({upTo: String(k), used: e.used, usedBytes: String(e.bytes)}))
  return {...out, usedBytes: String(out.usedBytes), freeBytes: String(out.freeBytes), bySizeClass}
}

/** Can this process pin the address layout (personality(ADDR_NO_RANDOMIZE) allowed)? Restores the persona. */
function pinningPossible(): boolean {
  try {
    const before = currentPersonality()
    setPersonality(before | ADDR_NO_RANDOMIZE)
    setPersonality(before)
    return true
  } catch {
    return false
  }
}

/** Whether `path` is an ELF file carrying an imgdump manifest note (cheap: reads headers and notes). */
export function isImageFile(path: string): boolean {
  let fd: number
  try { fd = fs.openSync(path, 'r') } catch { return false }
  try {
    const scan = new ElfScan(fdSource(fd))
    return scan.notes().some((n) => n.name === MANIFEST_NOTE_OWNER && n.type === MANIFEST_NOTE_TYPE)
  } catch {
    return false
  } finally {
    fs.closeSync(fd)
  }
}

export function describeImage(path: string): {object: ImageDescription; text: string} {
  let fd: number
  try { fd = fs.openSync(path, 'r') } catch (err) { throw ioError(err, path) }
  try {
    const src = fdSource(fd)
    const found = findManifest(new ElfScan(src))
    if (!found) throw new ImgdumpError('parse', 'IMAGE_NO_MANIFEST', `${path} is not an imgdump image (no IMGDUMP manifest note)`)
    const m = found.manifest
    const libraries = m.libraries.map(checkLibrary)
    const pinning = pinningPossible()
    const problems = libraries.filter((l) => !l.ok).map((l) => `${l.path}: ${l.problem}`)
    if (!pinning) problems.push('the address layout cannot be pinned here (personality denied)')
    let heap: ImageDescription['heap'] = null
    try {
      const h = heapHeaderFields(src, m)
      if (h) {
        heap = {magic: h.magic === HEAP_MAGIC, base: hex(h.base), brk: hex(h.brk), generation: h.generation.toString(),
          usedBytes: (h.brk >= h.base ? h.brk - h.base : 0n).toString(), allocations: null}
        try { heap.allocations = heapAllocations(fd, m) } catch (err) {
          heap.problem = err instanceof ImgdumpError ? err.message : String(err)
        }
      }
    } catch { heap = null }
    const sum = (source: string) => m.payloads.filter((p) => p.source === source).reduce((a, p) => a + p.length, 0n).toString()
    const object: ImageDescription = {
      path, format: 'elf', generation: m.generation.toString(), parent: m.parentDigest ? Buffer.from(m.parentDigest).toString('hex') : null,
      created: new Date(Number(m.createdNs / 1000000n)).toISOString(),
      runtime: {path: m.runtimePath, sha256: Buffer.from(m.runtimeDigest).toString('hex'), originalSize: m.originalSize.toString()},
      loadBias: hex(m.loadBias), heapHeader: hex(m.heapHeader),
      pinning: {pie: (m.flags & MANIFEST_FLAGS.pie) !== 0, noRandomize: (m.flags & MANIFEST_FLAGS.noRandomize) !== 0,
        stackUnlimited: (m.flags & MANIFEST_FLAGS.stackUnlimited) !== 0, stackLimit: hex(m.stackLimit)},
      segments: m.segments.map((s) => ({role: s.role, address: hex(s.address), memSize: hex(s.memSize), fileOffset: hex(s.fileOffset), fileSize: hex(s.fileSize),
        ...(s.tracking ? {tracking: s.tracking, pagesWritten: Number(s.pagesWritten ?? 0n)} : {})})),
      payloads: {count: m.payloads.length, fromMemory: sum('memory'), fromOriginal: sum('original')},
      undoRecords: m.undo.length, libraries,
      compatibility: {ok: problems.length === 0, pinningPossible: pinning, problems}, heap,
    }
    return {object, text: renderImageText(object)}
  } finally {
    fs.closeSync(fd)
  }
}

function renderImageText(d: ImageDescription): string {
  const lines = [
    `image ${d.path}`,
    `  generation ${d.generation}, parent ${d.parent ? `manifest sha256 ${d.parent.slice(0, 16)}…` : 'none (saved from a fresh process)'}, created ${d.created}`,
    `  runtime    ${d.runtime.path ?? '?'} (${d.runtime.originalSize} bytes, sha256 ${d.runtime.sha256.slice(0, 16)}…)`,
    `  layout     ${d.pinning.pie ? 'PIE' : 'non-PIE'}, load bias ${d.loadBias}, heap header ${d.heapHeader}, ` +
      `stack rlimit ${d.pinning.stackUnlimited ? 'unlimited' : d.pinning.stackLimit}`,
    '  segments',
    ...d.segments.map((s) => `    ${s.role.padEnd(11)} ${s.address.padStart(16)} mem ${s.memSize.padStart(12)} file ${s.fileOffset} +${s.fileSize}` +
      (s.tracking ? `  (${s.pagesWritten} pages written, tracking ${s.tracking})` : '')),
    `  payloads   ${d.payloads.count} (${d.payloads.fromMemory} bytes from memory, ${d.payloads.fromOriginal} from the original), undo records ${d.undoRecords}`,
    '  libraries',
    ...d.libraries.map((l) => `    ${l.ok ? 'ok ' : 'BAD'} ${l.base} ${l.path ?? '?'}${l.problem ? ` — ${l.problem}` : ''}`),
    d.heap ? `  heap       base ${d.heap.base}, break ${d.heap.brk} (${d.heap.usedBytes} bytes), generation ${d.heap.generation}${d.heap.magic ? '' : ' (BAD MAGIC)'}`
      : '  heap       no heap header found',
    ...(d.heap?.allocations ? [
      `  allocations ${d.heap.allocations.used} live (${d.heap.allocations.usedBytes} bytes), ${d.heap.allocations.free} free chunks (${d.heap.allocations.freeBytes} bytes)`,
      ...d.heap.allocations.bySizeClass.map((c) => `    ≤ ${c.upTo.padStart(9)} B  ${String(c.used).padStart(8)}  ${c.usedBytes} bytes`),
    ] : d.heap?.problem ? [`  allocations unreadable: ${d.heap.problem}`] : []),
    `  compatible ${d.compatibility.ok ? 'yes' : 'no'}${d.compatibility.problems.map((p) => `\n    - ${p}`).join('')}`,
  ]
  return lines.join('\n') + '\n'
}
