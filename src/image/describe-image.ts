/**
 * What `imgdump inspect` shows for an image: the manifest (generation, parent, creation,
 * runtime, libraries, segments), compatibility with this machine (each library present with
 * the same build-id, address layout pinnable) and a heap summary from the heap header.
 * Returns a JSON-ready object (bigints as hex strings) and its text rendering.
 */
import fs from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {ADDR_NO_RANDOMIZE, currentPersonality, setPersonality} from '../native/libc.js'
import {hex} from './address-ranges.js'
import {fdSource} from '../elf/byte-source.js'
import {ElfScan, scanFile} from '../elf/scan.js'
import {MANIFEST_FLAGS, MANIFEST_NOTE_OWNER, MANIFEST_NOTE_TYPE} from './manifest-fields.js'
import {findManifest} from './original-executable.js'
import {readHeapHeader} from './verify-image.js'
import {fileSource, readHeapHeader as readFullHeapHeader, walkChunks} from '../heap/index.js'
import type {Manifest} from './manifest.js'

export interface LibraryCompat {
  path: string | null
  base: string
  buildId: string | null
  present: boolean
  currentBuildId: string | null
  ok: boolean
  problem?: string
}

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
  segments: {role: string; address: string; memSize: string; fileOffset: string; fileSize: string}[]
  payloads: {count: number; fromMemory: string; fromOriginal: string}
  undoRecords: number
  libraries: LibraryCompat[]
  compatibility: {ok: boolean; pinningPossible: boolean; problems: string[]}
  heap: {magic: boolean; base: string; brk: string; generation: string; usedBytes: string; allocations: HeapAllocations | null; problem?: string} | null
}

export interface SizeClass {upTo: string; used: number; usedBytes: string}
export interface HeapAllocations {chunks: number; used: number; usedBytes: string; free: number; freeBytes: string; bySizeClass: SizeClass[]}

/** Live allocations by size class (powers of two of the usable size), from src/heap's chunk walk. */
function heapAllocations(path: string, m: Manifest): HeapAllocations {
  const seg = m.segments.find((s) => s.role === 'heap' && s.address === m.heapHeader)
  if (!seg) throw new ImgdumpError('parse', 'IMAGE_NO_HEAP_HEADER', 'no heap segment starts at the heap header')
  const src = fileSource(path, seg.fileOffset, seg.address, seg.fileSize)
  try {
    const header = readFullHeapHeader(src)
    const classes = new Map<number, {used: number; bytes: bigint}>()
    const out = {chunks: 0, used: 0, usedBytes: 0n, free: 0, freeBytes: 0n}
    for (const c of walkChunks(src, header)) {
      out.chunks++
      if (c.state !== 'used') { out.free++; out.freeBytes += c.size; continue }
      out.used++
      out.usedBytes += c.usable
      let k = 16
      while (BigInt(k) < c.usable) k *= 2
      const e = classes.get(k) ?? {used: 0, bytes: 0n}
      e.used++
      e.bytes += c.usable
      classes.set(k, e)
    }
    const bySizeClass = [...classes.entries()].sort((a, b) => a[0] - b[0])
      .map(([k, e]) => ({upTo: String(k), used: e.used, usedBytes: e.bytes.toString()}))
    return {...out, usedBytes: out.usedBytes.toString(), freeBytes: out.freeBytes.toString(), bySizeClass}
  } finally {
    src.close()
  }
}

function libraryCompat(l: {path: string | null; base: bigint; buildId: string | null}): LibraryCompat {
  const out: LibraryCompat = {path: l.path, base: hex(l.base), buildId: l.buildId, present: false, currentBuildId: null, ok: false}
  if (!l.path || !fs.existsSync(l.path)) { out.problem = 'not found on this machine'; return out }
  out.present = true
  try { out.currentBuildId = scanFile(l.path).buildId() } catch (err) {
    out.problem = `unreadable: ${err instanceof Error ? err.message : String(err)}`
    return out
  }
  out.ok = out.currentBuildId === l.buildId
  if (!out.ok) out.problem = `build-id ${out.currentBuildId ?? 'none'} ≠ saved ${l.buildId ?? 'none'}: the library changed since the save`
  return out
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
    const libraries = m.libraries.map(libraryCompat)
    const pinning = pinningPossible()
    const problems = libraries.filter((l) => !l.ok).map((l) => `${l.path}: ${l.problem}`)
    if (!pinning) problems.push('the address layout cannot be pinned here (personality denied)')
    let heap: ImageDescription['heap'] = null
    try {
      const h = readHeapHeader(src, m)
      if (h) {
        heap = {magic: h.magic === 0x50414548504d4449n, base: hex(h.base), brk: hex(h.brk), generation: h.generation.toString(),
          usedBytes: (h.brk >= h.base ? h.brk - h.base : 0n).toString(), allocations: null}
        try { heap.allocations = heapAllocations(path, m) } catch (err) {
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
      segments: m.segments.map((s) => ({role: s.role, address: hex(s.address), memSize: hex(s.memSize), fileOffset: hex(s.fileOffset), fileSize: hex(s.fileSize)})),
      payloads: {count: m.payloads.length, fromMemory: sum('memory'), fromOriginal: sum('original')},
      undoRecords: m.undo.length, libraries,
      compatibility: {ok: problems.length === 0, pinningPossible: pinning, problems}, heap,
    }
    return {object, text: renderImageText(object)}
  } finally {
    fs.closeSync(fd)
  }
}

export function renderImageText(d: ImageDescription): string {
  const lines = [
    `image ${d.path}`,
    `  generation ${d.generation}, parent ${d.parent ? `manifest sha256 ${d.parent.slice(0, 16)}…` : 'none (saved from a fresh process)'}, created ${d.created}`,
    `  runtime    ${d.runtime.path ?? '?'} (${d.runtime.originalSize} bytes, sha256 ${d.runtime.sha256.slice(0, 16)}…)`,
    `  layout     ${d.pinning.pie ? 'PIE' : 'non-PIE'}, load bias ${d.loadBias}, heap header ${d.heapHeader}, ` +
      `stack rlimit ${d.pinning.stackUnlimited ? 'unlimited' : d.pinning.stackLimit}`,
    '  segments',
    ...d.segments.map((s) => `    ${s.role.padEnd(11)} ${s.address.padStart(16)} mem ${s.memSize.padStart(12)} file ${s.fileOffset} +${s.fileSize}`),
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
