/**
 * Mach-O image writer (DESIGN §5, Mach-O): the runtime executable plus one LC_SEGMENT_64
 * per saved heap run or region (before __LINKEDIT), optionally a re-pointed __DATA, the
 * manifest in section __IMGDUMP,__manifest, __LINKEDIT moved last, and a fresh ad-hoc
 * signature. The result is re-parsed and checked by the layout validator before it is
 * returned.
 */
import {openSync, readSync, closeSync} from 'node:fs'
import {ioError} from '../errors.js'
import {MachoError} from '../macho/errors.js'
import {signAdhoc, stripSignature, noRoom} from '../macho/code-signature.js'
import {linkeditSegment, relayoutLinkedit} from '../macho/linkedit-layout.js'
import {commandBytesNeeded, insertSegments, type NewSegment, type Repoint, repointSegments} from '../macho/edit-segments.js'
import {readFat, pickSlice} from '../macho/fat.js'
import {alignUp} from '../binary/align.js'
import {firstSectionOffset, loadCommandsEnd} from '../macho/layout-facts.js'
import {LC, pageSizeFor} from '../macho/definitions.js'
import {findCommand, segmentCommands} from '../macho/model.js'
import {isFat, readMacho} from '../macho/read.js'
import {MANIFEST_SECTION, MANIFEST_SEGMENT, verifyMachoImage} from './macho-verify.js'
import {writeMacho} from '../macho/write.js'

export type PayloadSourceSpec = Buffer | {path: string; offset: bigint; length: bigint}
/** A segment to add; protections default to read-write (VM_PROT_READ|VM_PROT_WRITE = 3). */
export interface MachoImageSegment {name: string; address: bigint; memSize: bigint; payload: PayloadSourceSpec; initprot?: number; maxprot?: number}
export interface MachoSegmentPlacement {name: string; address: bigint; memSize: bigint; fileOffset: bigint; fileSize: bigint}
/**
 * `undo`: original bytes of every range of the runtime (thin slice) the image overwrites —
 * everything before the first section (header, load commands, header room) and the old
 * __LINKEDIT through the original end — for the manifest's undo log (images/README.md).
 */
export interface MachoImageLayout {
  segments: MachoSegmentPlacement[]
  undo: {fileOffset: bigint; original: Buffer}[]
  originalSize: bigint
  /** undo ranges not covered by a new segment's bytes: the manifest's `patched` payloads (images/README.md) */
  patched: {fileOffset: bigint; length: bigint}[]
}
export interface MachoImageOptions {
  /** fat runtimes: the slice to build from */
  arch?: string
  /** data segments re-pointed at saved bytes (fixups into memory ranges removed) */
  repoint?: Repoint[]
  /** signature identifier when the runtime is unsigned (a signed runtime's identifier is kept) */
  identifier?: string
  /** address of the manifest segment (default: the first page after every other segment) */
  manifestAddress?: bigint
}
export interface MachoImageResult {image: Buffer; layout: MachoImageLayout; warnings: string[]; droppedFixups: number}

function loadPayload(p: PayloadSourceSpec): Buffer {
  if (Buffer.isBuffer(p)) return p
  if (p.length > BigInt(2 ** 31)) throw new MachoError('write', 'MACHO_UNSUPPORTED', `payload of ${p.length} bytes exceeds the in-memory writer`, {value: p.length})
  const out = Buffer.alloc(Number(p.length))
  let fd: number
  try { fd = openSync(p.path, 'r') } catch (e) { throw ioError(e, p.path) }
  try {
    let done = 0
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, p.offset + BigInt(done))
      if (n === 0) throw new MachoError('io', 'MACHO_TRUNCATED', `${p.path}: payload range ${p.offset}+${p.length} ends past EOF`, {offset: p.offset + BigInt(done)})
      done += n
    }
  } catch (e) {
    if (e instanceof MachoError) throw e
    throw ioError(e, p.path)
  } finally { closeSync(fd) }
  return out
}

/**
 * The manifest is either final bytes or a function of the layout. As a function it is called
 * twice: first with `draft` null (only its size matters: the size moves nothing but
 * __LINKEDIT), then with a draft image whose bytes equal the final image everywhere except the
 * manifest and __LINKEDIT, so it can checksum `layout.patched` ranges; both calls must return
 * the same size.
 */
export type ManifestSource = Buffer | ((layout: MachoImageLayout, draft: Buffer | null) => Buffer)

interface Prepared {thin: Buffer; heapSegs: NewSegment[]; page: bigint}

function manifestSegment(payload: Buffer, address: bigint, page: bigint): NewSegment {
  return {name: MANIFEST_SEGMENT, address, memSize: alignUp(BigInt(payload.length || 1), page), payload,
    sections: [{sectname: MANIFEST_SECTION, addr: address, size: BigInt(payload.length), align: 3}], initprot: 1, maxprot: 1}
}

/** Ranges of `whole` not covered by `holes` (both lists of [start, end)). */
function uncovered(whole: [bigint, bigint][], holes: [bigint, bigint][]): {fileOffset: bigint; length: bigint}[] {
  const out: {fileOffset: bigint; length: bigint}[] = []
  for (const [a, z] of whole) {
    let cur = a
    for (const [h0, h1] of [...holes].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      if (h1 <= cur || h0 >= z) continue
      if (h0 > cur) out.push({fileOffset: cur, length: h0 - cur})
      cur = h1 > cur ? h1 : cur
    }
    if (cur < z) out.push({fileOffset: cur, length: z - cur})
  }
  return out
}

/** One deterministic build from the runtime: same inputs and manifest size give the same layout. */
function assemble(p: Prepared, manifest: (layout: MachoImageLayout) => Buffer, opts: MachoImageOptions): MachoImageResult {
  const m = readMacho(p.thin)
  const oldLinkedit = segmentCommands(m).find(s => s.f.segname === '__LINKEDIT')
  const originalSize = BigInt(p.thin.length)
  const undo = [{fileOffset: 0n, original: Buffer.from(p.thin.subarray(0, firstSectionOffset(m)))}]
  if (oldLinkedit) undo.push({fileOffset: oldLinkedit.f.fileoff, original: Buffer.from(p.thin.subarray(Number(oldLinkedit.f.fileoff)))})
  const stripped = stripSignature(m)
  let droppedFixups = 0
  droppedFixups += repointSegments(m, opts.repoint ?? [])
  insertSegments(m, p.heapSegs)
  const named = (n: string) => p.heapSegs.some(h => h.name === n) || (opts.repoint ?? []).some(r => r.segment === n)
  const placed = segmentCommands(m).filter(s => named(s.f.segname))
  // The manifest cannot checksum itself: keep it past every byte the undo log restores.
  const le = linkeditSegment(m)
  if (le.f.fileoff < originalSize) relayoutLinkedit(m, alignUp(originalSize, p.page), le.f.vmaddr)
  const layout: MachoImageLayout = {
    segments: placed.map(s => ({name: s.f.segname, address: s.f.vmaddr, memSize: s.f.vmsize, fileOffset: s.f.fileoff, fileSize: s.f.filesize})),
    undo, originalSize,
    patched: uncovered(undo.map(u => [u.fileOffset, u.fileOffset + BigInt(u.original.length)]),
      placed.filter(s => s.f.filesize > 0n).map(s => [s.f.fileoff, s.f.fileoff + s.f.filesize])),
  }
  const manifestBytes = manifest(layout)
  const top = segmentCommands(m).filter(s => s.f.segname !== '__LINKEDIT').reduce((e, s) => (s.f.vmaddr + s.f.vmsize > e ? s.f.vmaddr + s.f.vmsize : e), 0n)
  insertSegments(m, [manifestSegment(manifestBytes, opts.manifestAddress ?? alignUp(top, p.page), p.page)])
  signAdhoc(m, {identifier: stripped.identifier ?? opts.identifier ?? 'imgdump-image', pageSizeLog2: stripped.pageSizeLog2})
  return {image: writeMacho(m), layout, warnings: stripped.warnings, droppedFixups}
}

export function buildMachoImageDetailed(runtime: Buffer, segments: MachoImageSegment[], manifest: ManifestSource,
  opts: MachoImageOptions = {}): MachoImageResult {
  const thin = isFat(runtime) ? pickSlice(readFat(runtime), opts.arch).bytes : runtime
  const m = readMacho(thin)
  const page = pageSizeFor(m.header.cputype)
  const signed = findCommand(m, 'linkedit_data', LC.LC_CODE_SIGNATURE) !== undefined
  const heapSegs: NewSegment[] = segments.map(s => ({name: s.name, address: s.address, memSize: s.memSize, payload: loadPayload(s.payload), initprot: s.initprot, maxprot: s.maxprot}))
  // Refuse before doing anything if the load commands will not fit.
  const need = loadCommandsEnd(m) - (signed ? 16 : 0) + commandBytesNeeded([...heapSegs, manifestSegment(Buffer.alloc(0), 0n, page)], true)
  if (need > firstSectionOffset(m)) throw noRoom(need, firstSectionOffset(m))
  const p: Prepared = {thin, heapSegs, page}
  let result: MachoImageResult
  if (typeof manifest === 'function') {
    let firstSize = -1
    const draft = assemble(p, layout => { const b = manifest(layout, null); firstSize = b.length; return b }, opts)
    const size = draft.image.length
    result = assemble(p, layout => {
      const bytes = manifest(layout, draft.image)
      if (bytes.length !== firstSize) throw new MachoError('write', 'MACHO_BAD_LAYOUT', `the manifest changed size between its two passes (${firstSize} → ${bytes.length})`)
      return bytes
    }, opts)
    if (result.image.length !== size) throw new Error('internal: Mach-O image layout changed between passes')
  } else result = assemble(p, () => manifest, opts)
  const check = verifyMachoImage(result.image, {requireSignature: true})
  if (!check.ok) throw new MachoError('write', 'MACHO_BAD_LAYOUT', `the written image fails its layout check: ${check.problems.join('; ')}`)
  return result
}

export function buildMachoImage(runtime: Buffer, segments: MachoImageSegment[], manifest: ManifestSource, opts: MachoImageOptions = {}): Buffer {
  return buildMachoImageDetailed(runtime, segments, manifest, opts).image
}
