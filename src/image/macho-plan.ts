/**
 * Plan and finalize a Mach-O image through the same seam as ELF (save-types.ts). The image
 * writer (macho-image.ts) builds whole images in memory, so planning is a dry run of it with
 * placeholder payloads (ranges of /dev/zero) of the sizes the request gives: the layout it
 * returns says where each heap run and region lands in the file, which is where the runtime
 * pwrites them. Finalize builds the image again with the payloads read back from the pending
 * output itself (/proc/self/fd/<fd>), checks the runtime's CRCs against those bytes, writes
 * the image over the output, validates it and commits. The runtime's writable segments are
 * re-pointed at saved bytes: the runtime writes their memory pages too, and the file keeps
 * only their thread-local pages (macho-data-ranges.ts, docs/macho.md).
 */
import {crc32c} from '@node-rs/crc32'
import fs from 'node:fs'
import {alignUp} from '../binary/align.js'
import {ImgdumpError, ioError} from '../errors.js'
import {pageSizeFor} from '../macho/definitions.js'
import {isFat, readMacho} from '../macho/read.js'
import {manifestSection, verifyMachoImage} from './macho-verify.js'
import {hex} from '../binary/hex.js'
import {bufferSource} from '../elf/byte-source.js'
import {dataSegmentBytes, machoDataSegments, type MachoDataSegment} from './macho-data-ranges.js'
import {buildMachoImageDetailed, type MachoImageLayout, type MachoImageSegment} from './macho-image.js'
import {decodeManifest, encodeManifest, type Manifest, type ManifestPayload, type ManifestSegment} from './manifest.js'
import {MANIFEST_FLAGS, MANIFEST_FORMAT} from './manifest-fields.js'
import {loadOriginal, type OpenedExecutable} from './original-executable.js'
import type {ImagePlan, PendingOutput, PlannedWrite, SaveIncrement, SaveRequest, SaveResult} from './save-types.js'
import {editError, finalizeFrame, readAt, saveError, writeAt} from './finalize-frame.js'

/** The writer holds every payload in memory (macho-image.ts): the sum of saved bytes is capped. */
export const MACHO_MEMORY_CAP = 2n ** 31n
const MH_PIE = 0x200000

interface NewSeg {name: string; role: 'heap' | 'region' | 'reservation'; address: bigint; memSize: bigint; size: bigint}

export interface MachoPlanState {
  runtime: Buffer
  runtimePath: string
  digest: Buffer
  segments: NewSeg[]
  /** writable segments re-pointed at saved bytes */
  data: MachoDataSegment[]
  /** their file bytes, zero-padded to vmsize */
  dataOriginals: Buffer[]
  /** the manifest minus layout-dependent parts (segments, payloads, undo) */
  base: Omit<Manifest, 'segments' | 'payloads' | 'undo' | 'originalSize'>
  layout: MachoImageLayout
  startedAt: number
}

export interface MachoImagePlan extends ImagePlan {
  macho: MachoPlanState
}


export function planMachoImage(req: SaveRequest): MachoImagePlan {
  const startedAt = performance.now()
  const {bytes: runtime, path: runtimePath, digest, parentDigest} = loadOriginal(req.exe, req.origin, readMachoImageOrExe)
  if (isFat(runtime)) {
    throw editError('IMAGE_FAT_UNSUPPORTED', `${req.exe} is a fat (universal) Mach-O; a running process executes one slice`, undefined,
      'save from the thin slice the process runs (llvm-lipo -thin <arch>)')
  }
  // Saved data holds unslid pointers (fixups of memory pages are removed): images run with
  // the slide disabled, so a save from a slid process would restore wrong pointers.
  if (req.loadBias !== 0n) {
    throw saveError('IMAGE_BAD_REQUEST', `the Mach-O runtime runs with ASLR slide ${hex(req.loadBias)}; its saved pointers would be wrong in an unslid image`,
      req.loadBias, 'start the runtime with the slide disabled (posix_spawnattr flag _POSIX_SPAWN_DISABLE_ASLR; docs/macho.md)')
  }
  const m = readMacho(runtime)
  const page = pageSizeFor(m.header.cputype)
  const segments = newSegments(req, page)
  const data = machoDataSegments(m, page)
  let total = 0n
  for (const s of segments) total += s.size
  for (const d of data) total += d.vmsize
  if (total > MACHO_MEMORY_CAP) {
    throw editError('IMAGE_TOO_LARGE', `the Mach-O image writer holds payloads in memory: ${total} bytes saved exceeds its ${MACHO_MEMORY_CAP}-byte cap`, total)
  }
  const base = {
    generation: req.generation, createdNs: BigInt(Date.now()) * 1000000n, heapHeader: req.heap.header, loadBias: req.loadBias,
    stackLimit: req.pinning.stackLimit,
    flags: ((m.header.flags & MH_PIE) !== 0 ? MANIFEST_FLAGS.pie : 0) | (req.pinning.noRandomize ? MANIFEST_FLAGS.noRandomize : 0) |
      (req.pinning.stack === 'unlimited' ? MANIFEST_FLAGS.stackUnlimited : 0),
    format: MANIFEST_FORMAT.macho, runtimePath, runtimeDigest: digest, parentDigest,
    libraries: req.libraries.map((l) => ({base: l.base, path: l.path, buildId: l.buildId})),
  }
  const state: MachoPlanState = {runtime, runtimePath, digest, segments, data, dataOriginals: data.map((d) => dataSegmentBytes(m, d)), base,
    layout: null as unknown as MachoImageLayout, startedAt}
  // Dry run: placeholder payloads of the final sizes give the final layout (the manifest's size
  // does not depend on offsets or CRCs).
  const dry = build(state, segments.map((s) => ({path: '/dev/zero', offset: 0n, length: s.size})), state.dataOriginals, null)
  state.layout = dry.layout
  const writes: PlannedWrite[] = [
    ...segments.filter((s) => s.size > 0n).map((s) => ({addr: s.address, size: s.size, offset: placement(dry.layout, s).fileOffset})),
    ...data.flatMap((d) => d.fromMemory.map((r) => ({addr: d.vmaddr + r.offset, size: r.length, offset: placement(dry.layout, d).fileOffset + r.offset}))),
  ]
  writes.sort((a, b) => (a.offset < b.offset ? -1 : 1))
  return {request: req, writes, headerCopy: req.heap.header, fileSize: BigInt(dry.image.length), rewritesOutput: true, macho: state}
}

/** Heap run, regions and the reservation as segments, ascending (dyld's order rule). */
function newSegments(req: SaveRequest, page: bigint): NewSeg[] {
  const {base, brk, header, reserve} = req.heap
  if (base % page !== 0n) throw saveError('IMAGE_BAD_REQUEST', `heap base ${hex(base)} is not aligned to the ${page}-byte Mach-O page`, base)
  if (brk <= base || header < base || header >= brk) throw saveError('IMAGE_BAD_REQUEST', `heap [${hex(base)}, ${hex(brk)}) does not contain its header ${hex(header)}`)
  if (reserve < brk - base) throw saveError('IMAGE_BAD_REQUEST', `heap reserve ${hex(reserve)} smaller than the heap`, reserve)
  const heapMem = alignUp(brk - base, page)
  const segs: NewSeg[] = [{name: '__IMGHEAP', role: 'heap', address: base, memSize: heapMem, size: brk - base}]
  if (base + reserve > base + heapMem) {
    segs.push({name: '__IMGRESERVE', role: 'reservation', address: base + heapMem, memSize: reserve - heapMem, size: 0n})
  }
  req.regions.forEach((r, i) => {
    if (r.addr % page !== 0n || r.size === 0n) throw saveError('IMAGE_BAD_REQUEST', `region ${hex(r.addr)} +${hex(r.size)} not page-aligned or empty`, r.addr)
    segs.push({name: `__IMGREGION${i}`, role: 'region', address: r.addr, memSize: alignUp(r.size, page), size: r.size})
  })
  segs.sort((a, b) => (a.address < b.address ? -1 : 1))
  for (let i = 1; i < segs.length; i++) {
    if (segs[i].address < segs[i - 1].address + segs[i - 1].memSize) {
      throw saveError('IMAGE_BAD_REQUEST', `saved range at ${hex(segs[i].address)} overlaps the one at ${hex(segs[i - 1].address)}`, segs[i].address)
    }
  }
  return segs
}

function placement(layout: MachoImageLayout, s: {name: string}) {
  const p = layout.segments.find((x) => x.name === s.name)
  if (!p) throw new ImgdumpError('internal', 'LAYOUT_DRIFT', `segment ${s.name} missing from the Mach-O layout`)
  return p
}

/**
 * One build of the image: `payloads` per new segment, `dataBytes` per re-pointed segment;
 * `crcOf` gives the runtime's CRC of a planned write (null for the dry run: computed from the
 * draft).
 */
function build(state: MachoPlanState, payloads: MachoImageSegment['payload'][], dataBytes: Buffer[],
  crcOf: ((addr: bigint, size: bigint) => number) | null) {
  // The reservation is address space only (PROT_NONE, like ELF's placeholder): the runtime
  // makes it writable as the heap grows.
  const segs: MachoImageSegment[] = state.segments.map((s, i) => ({name: s.name, address: s.address, memSize: s.memSize, payload: payloads[i],
    ...(s.role === 'reservation' ? {initprot: 0, maxprot: 3} : {})}))
  const repoint = state.data.map((d, i) => ({segment: d.name, bytes: dataBytes[i], fromMemory: d.fromMemory}))
  return buildMachoImageDetailed(state.runtime, segs, (layout, draft) => {
    const segments: ManifestSegment[] = [
      ...state.data.map((d) => ({role: 'data' as const, address: d.vmaddr, memSize: d.vmsize,
        fileOffset: placement(layout, d).fileOffset, fileSize: d.vmsize})),
      ...state.segments.map((s) => {
        const p = placement(layout, s)
        return {role: s.role, address: s.address, memSize: s.memSize, fileOffset: s.size > 0n ? p.fileOffset : 0n, fileSize: s.size}
      }),
    ]
    const crc = (addr: bigint, size: bigint, fileOffset: bigint) => crcOf ? crcOf(addr, size) : draftCrc(draft, fileOffset, size)
    const list: ManifestPayload[] = [
      ...state.segments.flatMap((s) => (s.size > 0n
        ? [memoryPayload(placement(layout, s).fileOffset, s.size, crc(s.address, s.size, placement(layout, s).fileOffset))] : [])),
      ...state.data.flatMap((d) => {
        const at = placement(layout, d).fileOffset
        return [
          ...d.fromMemory.map((r) => memoryPayload(at + r.offset, r.length, crc(d.vmaddr + r.offset, r.length, at + r.offset))),
          // Thread-local pages: the runtime's file bytes, copied (source 2, images/README.md).
          ...d.fromFile.map((r) => ({fileOffset: at + r.offset, length: r.length, source: 'original' as const, crc32c: draftCrc(draft, at + r.offset, r.length)})),
        ]
      }),
      // Bytes the undo log restores must be checksummed too (images/README.md).
      ...layout.patched.map((r) => ({fileOffset: r.fileOffset, length: r.length, source: 'patched' as const,
        crc32c: draftCrc(draft, r.fileOffset, r.length)})),
    ].sort((a, b) => (a.fileOffset < b.fileOffset ? -1 : a.fileOffset > b.fileOffset ? 1 : 0))
    return Buffer.from(encodeManifest({...state.base, originalSize: layout.originalSize, segments, payloads: list,
      undo: layout.undo.map((u) => ({fileOffset: u.fileOffset, original: u.original}))}))
  }, {repoint})
}

/** CRC32C of a range of the draft image (0 in the size-only first pass, which has none). */
function draftCrc(draft: Buffer | null, fileOffset: bigint, length: bigint): number {
  return draft ? crc32c(draft.subarray(Number(fileOffset), Number(fileOffset + length))) >>> 0 : 0
}

function memoryPayload(fileOffset: bigint, length: bigint, crc32: number): ManifestPayload {
  return {fileOffset, length, crc32c: crc32, source: 'memory'}
}


/**
 * After the runtime wrote every planned range (`crcs`: CRC32C per write, in plan order):
 * rebuild the image around those bytes, write it over the output, validate, commit. On any
 * failure the output is discarded and the previous image stays as it was.
 */
export function finalizeMachoImage(plan: MachoImagePlan, pending: PendingOutput, crcs: readonly number[], increment?: SaveIncrement): SaveResult {
  const s = plan.macho
  return finalizeFrame(plan, pending, crcs, s.startedAt, () => {
    // What the runtime reports must be what the file holds (a torn or misplaced write fails here).
    plan.writes.forEach((w, i) => {
      const got = crc32c(readAt(pending.fd, w.offset, w.size)) >>> 0
      if (got !== crcs[i] >>> 0) {
        throw saveError('IMAGE_CRC_MISMATCH', `bytes written for ${hex(w.addr)} +${hex(w.size)} at file offset ${w.offset} have CRC32C 0x${got.toString(16)}, the runtime reported 0x${(crcs[i] >>> 0).toString(16)}`, w.offset)
      }
    })
    const self = `/proc/self/fd/${pending.fd}`
    const crcByWrite = new Map(plan.writes.map((w, i) => [`${w.addr}+${w.size}`, crcs[i] >>> 0]))
    const crcOf = (addr: bigint, size: bigint): number => {
      const c = crcByWrite.get(`${addr}+${size}`)
      if (c === undefined) throw new ImgdumpError('internal', 'LAYOUT_DRIFT', `no planned write for ${hex(addr)} +${hex(size)}`)
      return c
    }
    const payloads = s.segments.map((seg) => ({path: self, offset: seg.size > 0n ? placement(s.layout, seg).fileOffset : 0n, length: seg.size}))
    // Memory pages as the runtime wrote them over the file's thread-local pages.
    const dataBytes = s.data.map((d, i) => {
      const bytes = Buffer.from(s.dataOriginals[i])
      const at = placement(s.layout, d).fileOffset
      for (const r of d.fromMemory) readAt(pending.fd, at + r.offset, r.length).copy(bytes, Number(r.offset))
      return bytes
    })
    const result = build(s, payloads, dataBytes, crcOf)
    if (BigInt(result.image.length) !== plan.fileSize) {
      throw new ImgdumpError('internal', 'LAYOUT_DRIFT', `Mach-O image is ${result.image.length} bytes, planned ${plan.fileSize}`)
    }
    for (const seg of [...s.segments, ...s.data]) {
      if (placement(result.layout, seg).fileOffset !== placement(s.layout, seg).fileOffset) {
        throw new ImgdumpError('internal', 'LAYOUT_DRIFT', `segment ${seg.name} moved between plan and finalize`)
      }
    }
    writeAt(pending.fd, result.image, 0)
    fs.ftruncateSync(pending.fd, result.image.length)
    const written = readAt(pending.fd, 0n, plan.fileSize)
    const check = verifyMachoImage(written, {requireSignature: true})
    if (!check.ok) throw new ImgdumpError('write', 'IMAGE_WRITE_CHECK', `the written Mach-O image failed its check: ${check.problems.join('; ')}`)
    pending.commit()
  }, increment)
}

/** A Mach-O runtime or image for loadOriginal (read whole: the writer holds images in memory anyway). */
function readMachoImageOrExe(path: string): OpenedExecutable {
  let bytes: Buffer
  try { bytes = fs.readFileSync(path) } catch (err) { throw ioError(err, path) }
  return {found: isFat(bytes) ? null : findMachoManifest(bytes), src: bufferSource(bytes), close: () => {}}
}

/** The manifest of a thin Mach-O image (section __IMGDUMP,__manifest), or null in a plain runtime. */
export function findMachoManifest(bytes: Buffer): {manifest: Manifest; bytes: Uint8Array} | null {
  const sec = manifestSection(readMacho(bytes))
  if (!sec) return null
  const raw = bytes.subarray(sec.offset, sec.offset + Number(sec.size))
  return {manifest: decodeManifest(raw, sec.offset), bytes: raw}
}

