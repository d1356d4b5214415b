/**
 * Plan an ELF image (DESIGN §5): the original executable's bytes (patched, every patch in the
 * undo log), then the writable segments at new file ranges, then one PT_LOAD per heap run
 * and region, then a read-only PT_LOAD holding the moved program header table and the
 * manifest note. A PT_LOAD past the end of the file keeps the heap reservation mapped
 * `---p` without commit charge, so the kernel's program break lands above it.
 */
import {crc32c} from '@node-rs/crc32'
import {EM, ET, ElfHeaderDef, PF, PT, SHF, SHT, MAX_PHNUM, NoteHeaderDef, ProgramHeaderDef, type ProgramHeader} from '../elf/definitions.js'
import {encodeStructs, offsetOf} from '../binary/field-table.js'
import {parseElf} from '../elf/reader.js'
import {ImgdumpError} from '../errors.js'
import {alignUp} from '../binary/align.js'
import {congruentOffset, overlaps, type Range} from './address-ranges.js'
import {hex} from '../binary/hex.js'
import {classifyDataSegments, type DataSegmentRanges} from './elf-data-ranges.js'
import {neutralizeRelocations, type RelocationReport} from './elf-relocations.js'
import {bufferSource} from '../elf/byte-source.js'
import {ElfScan} from '../elf/scan.js'
import {encodeManifest, type Manifest, type ManifestPayload, type ManifestSegment, type ManifestUndo} from './manifest.js'
import {MANIFEST_FLAGS, MANIFEST_FORMAT, MANIFEST_NOTE_OWNER} from './manifest-fields.js'
import {loadOriginal, type OriginalExecutable} from './original-executable.js'
import {assignPrevious, choosePrevious} from './previous-image.js'
import {runningExecutable} from './running-executable.js'
import {OriginalPatcher} from './original-patcher.js'
import type {ImagePlan, PlannedWrite, SaveRequest} from './save-types.js'
import {editError, saveError} from './finalize-frame.js'

const HUGE_PAGE = 0x200000n
const PHDR_SIZE = BigInt(ProgramHeaderDef.size)
export const NOTE_OWNER_BYTES = Buffer.from(MANIFEST_NOTE_OWNER + '\0', 'latin1')
/** Note header + "IMGDUMP\0" (20 bytes): the descriptor starts 4-aligned. */
export const NOTE_PREFIX = NoteHeaderDef.size + NOTE_OWNER_BYTES.length

export interface FileCopy {offset: bigint; bytes: Uint8Array; crc32c: number}

export interface ElfPlanState {
  original: OriginalExecutable
  patched: Buffer
  copies: FileCopy[]
  phdrs: ProgramHeader[]
  tailOffset: bigint
  tailVaddr: bigint
  noteOffset: bigint
  manifestSize: number
  /** The manifest with memory payload CRCs still zero; `memoryPayload[i]` is the payload of write i. */
  manifest: Manifest
  memoryPayload: number[]
  relocations: RelocationReport
  startedAt: number
  prepared: boolean
}

export interface ElfImagePlan extends ImagePlan {
  elf: ElfPlanState
}


/** Originals already validated by parseElf (loadOriginal hands back the same buffer for the same file). */
const validated = new WeakSet<Buffer>()

/**
 * One PT_LOAD of saved memory. `parts`: the registered ranges it covers (one, or several
 * coalesced regions); the runtime writes each separately, since it accepts a write only
 * inside one range it registered (native/src/save.c write_allowed).
 */
interface Run {role: 'heap' | 'region'; addr: bigint; fileSize: bigint; memSize: bigint; offset: bigint; parts: {addr: bigint; size: bigint}[]}

export function planElfImage(req: SaveRequest): ElfImagePlan {
  const startedAt = performance.now()
  // Through /proc/PID/exe the running file itself is read (it may be an image); `origin` is
  // only for runtimes too old to report their pid.
  const running = runningExecutable(req)
  const original = loadOriginal(running.open, running.viaProc ? null : req.origin, undefined, running.label)
  // The ELF model's reader validates the whole original (bounds, overlaps, tables) before we edit it.
  if (!validated.has(original.bytes)) {
    parseElf(original.bytes)
    validated.add(original.bytes)
  }
  const scan = new ElfScan(bufferSource(original.bytes))
  const pageSize = scan.header.e_machine === EM.EM_AARCH64 ? 0x10000n : 0x1000n
  checkExecutable(scan, req, original.path)
  const runs = checkRequest(req, pageSize)
  const data = classifyDataSegments(scan)
  const patcher = new OriginalPatcher(original.bytes)
  const relocations = neutralizeRelocations(scan, patcher, data.flatMap((d) => d.fromMemory))

  const {dataOffsets, tailOffset} = placeSegments(data, runs, BigInt(original.bytes.length), pageSize)
  const loadEnd = scan.loads().reduce((m, p) => (p.p_vaddr + p.p_memsz > m ? p.p_vaddr + p.p_memsz : m), 0n)
  const tailVaddr = alignUp(loadEnd, pageSize) + tailOffset % pageSize
  const brkEnd = alignUp(req.heap.brk, pageSize)
  const reserveEnd = req.heap.base + req.heap.reserve
  const hasPlaceholder = reserveEnd > brkEnd

  const phnum = scan.phdrs.length + 1 + runs.length + (hasPlaceholder ? 1 : 0) + 1
  if (phnum > MAX_PHNUM) {
    throw editError('ELF_TOO_MANY_SEGMENTS', `the image needs ${phnum} program headers, the kernel reads at most ${MAX_PHNUM}`,
      phnum, 'register fewer regions')
  }
  const writes = plannedWrites(data, dataOffsets, runs, req.loadBias)
  const previous = choosePrevious(req, original)
  if (previous.segments) assignPrevious(writes, previous.segments)
  const copies = fileCopies(data, dataOffsets, patcher.patched)
  const segments = manifestSegments(data, dataOffsets, runs, req, brkEnd, reserveEnd)

  const phTableSize = BigInt(phnum) * PHDR_SIZE
  const noteOffset = tailOffset + phTableSize
  const manifestDraft: Manifest = {
    generation: req.generation, createdNs: BigInt(Date.now()) * 1000000n, heapHeader: req.heap.header, loadBias: req.loadBias,
    stackLimit: req.pinning.stackLimit,
    flags: (scan.header.e_type === ET.ET_DYN ? MANIFEST_FLAGS.pie : 0) | (req.pinning.noRandomize ? MANIFEST_FLAGS.noRandomize : 0) |
      (req.pinning.stack === 'unlimited' ? MANIFEST_FLAGS.stackUnlimited : 0),
    format: MANIFEST_FORMAT.elf, runtimePath: original.path, runtimeDigest: original.digest, parentDigest: original.parentDigest,
    originalSize: BigInt(original.bytes.length),
    libraries: req.libraries.map((l) => ({base: l.base, path: l.path, buildId: l.buildId})),
    segments, payloads: [], undo: [],
  }
  // Patches first (they change the undo log, hence the manifest size), then the final sizes.
  const placeholderOffset = (manifestSize: number) =>
    alignUp(noteOffset + BigInt(NOTE_PREFIX) + alignUp(BigInt(manifestSize), 4n), pageSize)
  const newLoads: ProgramHeader[] = [
    ...runs.map((r) => load(PF.PF_R | PF.PF_W, r.offset, r.addr - req.loadBias, r.fileSize, r.memSize, pageSize)),
  ]
  patchHeaders(scan, patcher, data, dataOffsets, tailOffset, phnum)
  manifestDraft.undo = patcher.undo()
  const headerPayload: ManifestPayload = {fileOffset: tailOffset, length: phTableSize, crc32c: 0, source: 'headers'}
  const {payloads, memoryPayload} = payloadList(writes, copies, manifestDraft.undo, patcher.patched, headerPayload)
  manifestDraft.payloads = payloads
  // The manifest's size does not depend on offsets or CRCs: place the reservation and the tail with it.
  const manifestSize = encodeManifest(manifestDraft).length
  if (hasPlaceholder) {
    const off = placeholderOffset(manifestSize)
    newLoads.push(load(0, off, brkEnd - req.loadBias, reserveEnd - brkEnd, reserveEnd - brkEnd, pageSize))
    const seg = segments.find((s) => s.role === 'reservation')
    if (seg) seg.fileOffset = off
  }
  const tailSize = phTableSize + BigInt(NOTE_PREFIX) + alignUp(BigInt(manifestSize), 4n)
  newLoads.push(load(PF.PF_R, tailOffset, tailVaddr, tailSize, tailSize, pageSize))
  const phdrs = programHeaders(scan, data, dataOffsets, newLoads, {tailOffset, tailVaddr, phTableSize, noteOffset, manifestSize})
  if (phdrs.length !== phnum) throw new ImgdumpError('internal', 'PHNUM_MISMATCH', `planned ${phnum} program headers, built ${phdrs.length}`)
  headerPayload.crc32c = crc32c(encodeStructs(ProgramHeaderDef, phdrs)) >>> 0

  return {
    request: req, writes, headerCopy: req.heap.header, fileSize: tailOffset + tailSize,
    ...(previous.segments ? {} : {fullBecause: previous.why ?? 'no previous image'}),
    elf: {
      original, patched: patcher.patched, copies, phdrs, tailOffset, tailVaddr, noteOffset, manifestSize,
      manifest: manifestDraft, memoryPayload, relocations, startedAt, prepared: false,
    },
  }
}

/** File layout, in this order: original, data segments, runs (sets their offsets), then the tail. */
function placeSegments(data: DataSegmentRanges[], runs: Run[], originalSize: bigint, pageSize: bigint): {dataOffsets: bigint[]; tailOffset: bigint} {
  let at = originalSize
  const dataOffsets = data.map((d) => {
    const align = d.load.p_align > pageSize && d.load.p_align <= HUGE_PAGE ? d.load.p_align : pageSize
    const off = congruentOffset(at, d.load.p_vaddr, align)
    at = off + d.load.p_memsz
    return off
  })
  for (const r of runs) {
    // 2 MiB congruence lets the page cache map big runs with huge entries (DESIGN §8); holes stay sparse.
    r.offset = congruentOffset(at, r.addr, r.fileSize >= HUGE_PAGE ? HUGE_PAGE : pageSize)
    at = r.offset + r.fileSize
  }
  return {dataOffsets, tailOffset: alignUp(at, pageSize)}
}

/** Payloads sorted by offset: memory writes (CRC filled at finalize), file copies, patched ranges. */
function payloadList(writes: PlannedWrite[], copies: FileCopy[], undo: ManifestUndo[], patched: Buffer,
  headers: ManifestPayload): {payloads: ManifestPayload[]; memoryPayload: number[]} {
  const payloads: ManifestPayload[] = [
    headers,
    ...writes.map((w) => ({fileOffset: w.offset, length: w.size, crc32c: 0, source: 'memory' as const})),
    ...copies.map((c) => ({fileOffset: c.offset, length: BigInt(c.bytes.length), crc32c: c.crc32c, source: 'original' as const})),
    // The undo log would hide a damaged patched byte from the digest check: checksum patched ranges too.
    ...undo.map((u) => {
      const bytes = patched.subarray(Number(u.fileOffset), Number(u.fileOffset) + u.original.length)
      return {fileOffset: u.fileOffset, length: BigInt(bytes.length), crc32c: crc32c(bytes) >>> 0, source: 'patched' as const}
    }),
  ].sort((a, b) => (a.fileOffset < b.fileOffset ? -1 : a.fileOffset > b.fileOffset ? 1 : 0))
  const index = new Map(payloads.map((p, i) => [`${p.source}:${p.fileOffset}`, i]))
  return {payloads, memoryPayload: writes.map((w) => index.get(`memory:${w.offset}`)!)}
}

function load(flags: number, offset: bigint, vaddr: bigint, filesz: bigint, memsz: bigint, align: bigint): ProgramHeader {
  return {p_type: PT.PT_LOAD, p_flags: flags, p_offset: offset, p_vaddr: vaddr, p_paddr: vaddr, p_filesz: filesz, p_memsz: memsz, p_align: align}
}

function checkExecutable(scan: ElfScan, req: SaveRequest, path: string): void {
  const h = scan.header
  if (h.e_machine !== EM.EM_X86_64 && h.e_machine !== EM.EM_AARCH64) {
    throw editError('IMAGE_MACHINE_UNSUPPORTED', `${path}: machine ${h.e_machine} is not supported (x86-64, aarch64)`)
  }
  if (h.e_type !== ET.ET_EXEC && h.e_type !== ET.ET_DYN) throw editError('IMAGE_NOT_EXECUTABLE', `${path} is not an executable (e_type ${h.e_type})`)
  if (!scan.firstOf(PT.PT_INTERP) || !scan.firstOf(PT.PT_DYNAMIC)) {
    throw editError('IMAGE_STATIC_UNSUPPORTED', `${path} is statically linked: its data holds the C library's own state ` +
      '(exit handlers mangled with the old pointer guard, stdio buffers, vDSO pointers), which cannot be restored safely', undefined,
    'link the runtime dynamically (without -static / -static-pie)')
  }
  if (!scan.firstOf(PT.PT_PHDR)) throw editError('IMAGE_NO_PT_PHDR', `${path} has no PT_PHDR; ld.so needs it to find the moved program headers`)
  if (h.e_type === ET.ET_EXEC && req.loadBias !== 0n) throw saveError('IMAGE_BAD_REQUEST', `load bias ${hex(req.loadBias)} reported for a non-PIE executable`)
}

function checkRequest(req: SaveRequest, page: bigint): Run[] {
  const {base, brk, header, reserve} = req.heap
  if (base % page !== 0n || req.loadBias % page !== 0n) throw saveError('IMAGE_BAD_REQUEST', `heap base ${hex(base)} or load bias not page-aligned`)
  if (brk <= base || header < base || header >= brk) throw saveError('IMAGE_BAD_REQUEST', `heap [${hex(base)}, ${hex(brk)}) does not contain its header ${hex(header)}`)
  if (reserve < brk - base) throw saveError('IMAGE_BAD_REQUEST', `heap reserve ${hex(reserve)} smaller than the heap`)
  const runs: Run[] = [{role: 'heap', addr: base, fileSize: brk - base, memSize: alignUp(brk - base, page), offset: 0n, parts: [{addr: base, size: brk - base}]}]
  for (const r of req.regions) {
    if (r.addr % page !== 0n || r.size === 0n) throw saveError('IMAGE_BAD_REQUEST', `region ${hex(r.addr)} +${hex(r.size)} not page-aligned or empty`)
    runs.push({role: 'region', addr: r.addr, fileSize: r.size, memSize: alignUp(r.size, page), offset: 0n, parts: [{addr: r.addr, size: r.size}]})
  }
  runs.sort((a, b) => (a.addr < b.addr ? -1 : 1))
  const spans: Range[] = [...runs.map((r) => ({start: r.addr, end: r.addr + r.memSize})), {start: base, end: base + reserve}]
  for (let i = 0; i < runs.length; i++) {
    for (let j = 0; j < spans.length; j++) {
      if (j === i || (runs[i].role === 'heap' && j === spans.length - 1)) continue
      if (overlaps({start: runs[i].addr, end: runs[i].addr + runs[i].memSize}, spans[j])) {
        throw saveError('IMAGE_BAD_REQUEST', `region at ${hex(runs[i].addr)} overlaps another saved range`)
      }
    }
  }
  return coalesceRegions(runs, page)
}

/**
 * Regions that touch become one PT_LOAD (the kernel reads at most 73 program headers). Only
 * where the earlier region ends on a page boundary: otherwise the rest of its last page would
 * come back with whatever memory held instead of the zeros an unmerged segment gives.
 */
function coalesceRegions(sorted: Run[], page: bigint): Run[] {
  const out: Run[] = []
  for (const r of sorted) {
    const prev = out.at(-1)
    if (prev && prev.role === 'region' && r.role === 'region' && prev.fileSize % page === 0n && prev.addr + prev.memSize === r.addr) {
      prev.fileSize += r.fileSize
      prev.memSize += r.memSize
      prev.parts.push(...r.parts)
    } else {
      out.push({...r, parts: [...r.parts]})
    }
  }
  return out
}

/**
 * Memory ranges of each data segment (touching ones merged: they lie in one PT_LOAD, which the
 * runtime accepts whole), then one write per registered range of each run. Never merged
 * across segments or registered ranges: the runtime accepts a write only inside one of them.
 */
function plannedWrites(data: DataSegmentRanges[], offsets: bigint[], runs: Run[], bias: bigint): PlannedWrite[] {
  const out: PlannedWrite[] = []
  data.forEach((d, i) => {
    let last: PlannedWrite | undefined
    for (const r of d.fromMemory) {
      const w = {addr: bias + r.start, size: r.end - r.start, offset: offsets[i] + (r.start - d.load.p_vaddr)}
      if (last && last.offset + last.size === w.offset && last.addr + last.size === w.addr) last.size += w.size
      else out.push(last = w)
    }
  })
  for (const r of runs) for (const p of r.parts) out.push({addr: p.addr, size: p.size, offset: r.offset + (p.addr - r.addr)})
  return out.sort((a, b) => (a.offset < b.offset ? -1 : 1))
}

function fileCopies(data: DataSegmentRanges[], offsets: bigint[], patched: Buffer): FileCopy[] {
  const out: FileCopy[] = []
  data.forEach((d, i) => {
    const p = d.load
    for (const r of d.fromFile) {
      const bytes = new Uint8Array(Number(r.end - r.start))
      // Bytes past p_filesz are .bss: zero in the original too.
      const fileEnd = p.p_vaddr + p.p_filesz
      if (r.start < fileEnd) {
        const n = Number((r.end < fileEnd ? r.end : fileEnd) - r.start)
        const from = Number(p.p_offset + (r.start - p.p_vaddr))
        bytes.set(patched.subarray(from, from + n))
      }
      out.push({offset: offsets[i] + (r.start - p.p_vaddr), bytes, crc32c: crc32c(bytes) >>> 0})
    }
  })
  return out
}

function manifestSegments(data: DataSegmentRanges[], offsets: bigint[], runs: Run[], req: SaveRequest, brkEnd: bigint, reserveEnd: bigint): ManifestSegment[] {
  const out: ManifestSegment[] = data.map((d, i) => ({
    role: 'data', address: req.loadBias + d.load.p_vaddr, memSize: d.load.p_memsz, fileOffset: offsets[i], fileSize: d.load.p_memsz,
  }))
  for (const r of runs) out.push({role: r.role, address: r.addr, memSize: r.memSize, fileOffset: r.offset, fileSize: r.fileSize})
  if (reserveEnd > brkEnd) out.push({role: 'reservation', address: brkEnd, memSize: reserveEnd - brkEnd, fileOffset: 0n, fileSize: 0n})
  return out
}

/** e_phoff/e_phnum, and the section headers of saved data: PROGBITS at their new file offsets. */
function patchHeaders(scan: ElfScan, patcher: OriginalPatcher, data: DataSegmentRanges[], offsets: bigint[], tailOffset: bigint, phnum: number): void {
  patcher.patchU64(BigInt(offsetOf(ElfHeaderDef, 'e_phoff')), tailOffset, 'e_phoff')
  patcher.patchU16(BigInt(offsetOf(ElfHeaderDef, 'e_phnum')), phnum, 'e_phnum')
  for (const s of scan.sections) {
    const h = s.header
    if ((h.sh_flags & SHF.SHF_ALLOC) === 0n) continue
    if ((h.sh_flags & SHF.SHF_TLS) !== 0n && h.sh_type === SHT.SHT_NOBITS) continue
    const i = data.findIndex((d) => h.sh_addr >= d.load.p_vaddr && h.sh_addr + h.sh_size <= d.load.p_vaddr + d.load.p_memsz)
    if (i < 0) continue
    patcher.patchU64(s.headerOffset + 24n, offsets[i] + (h.sh_addr - data[i].load.p_vaddr), `${s.name} sh_offset`)
    if (h.sh_type === SHT.SHT_NOBITS) patcher.patchU32(s.headerOffset + 4n, SHT.SHT_PROGBITS, `${s.name} sh_type`)
  }
}

interface TailFacts {tailOffset: bigint; tailVaddr: bigint; phTableSize: bigint; noteOffset: bigint; manifestSize: number}

function programHeaders(scan: ElfScan, data: DataSegmentRanges[], offsets: bigint[], newLoads: ProgramHeader[], t: TailFacts): ProgramHeader[] {
  const firstLoad = scan.phdrs.findIndex((p) => p.p_type === PT.PT_LOAD)
  const moved = (p: ProgramHeader): ProgramHeader => {
    if (p.p_type === PT.PT_PHDR) return {...p, p_offset: t.tailOffset, p_vaddr: t.tailVaddr, p_paddr: t.tailVaddr, p_filesz: t.phTableSize, p_memsz: t.phTableSize}
    const i = data.findIndex((d) => p.p_vaddr >= d.load.p_vaddr && p.p_vaddr + p.p_memsz <= d.load.p_vaddr + d.load.p_memsz)
    if (i < 0 || p.p_type === PT.PT_GNU_STACK) return {...p}
    const p_offset = offsets[i] + (p.p_vaddr - data[i].load.p_vaddr)
    // The re-pointed data segment: every byte now has file bytes (p_filesz = p_memsz).
    if (p.p_type === PT.PT_LOAD) return {...p, p_offset, p_filesz: p.p_memsz}
    return {...p, p_offset}
  }
  const prefix = scan.phdrs.slice(0, firstLoad).map(moved)
  const loads = [...scan.phdrs.filter((p) => p.p_type === PT.PT_LOAD).map(moved), ...newLoads]
    .sort((a, b) => (a.p_vaddr < b.p_vaddr ? -1 : 1))
  const rest = scan.phdrs.slice(firstLoad).filter((p) => p.p_type !== PT.PT_LOAD).map(moved)
  const noteSize = BigInt(NOTE_PREFIX) + alignUp(BigInt(t.manifestSize), 4n)
  const note: ProgramHeader = {p_type: PT.PT_NOTE, p_flags: PF.PF_R, p_offset: t.noteOffset, p_vaddr: t.tailVaddr + t.phTableSize,
    p_paddr: t.tailVaddr + t.phTableSize, p_filesz: noteSize, p_memsz: noteSize, p_align: 4n}
  return [...prefix, ...loads, ...rest, note]
}

