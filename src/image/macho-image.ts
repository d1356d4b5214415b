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
import {commandBytesNeeded, insertSegments, type NewSegment, type Repoint, repointSegment} from '../macho/edit-segments.js'
import {readFat, pickSlice} from '../macho/fat.js'
import {alignUp} from '../macho/field-table.js'
import {firstSectionOffset, loadCommandsEnd} from '../macho/layout-facts.js'
import {LC, pageSizeFor} from '../macho/definitions.js'
import {findCommand, segmentCommands} from '../macho/model.js'
import {isFat, readMacho} from '../macho/read.js'
import {MANIFEST_SECTION, MANIFEST_SEGMENT, verifyMachoImage} from '../macho/verify.js'
import {writeMacho} from '../macho/write.js'

export type PayloadSourceSpec = Buffer | {path: string; offset: bigint; length: bigint}
export interface MachoImageSegment {name: string; address: bigint; memSize: bigint; payload: PayloadSourceSpec}
export interface MachoSegmentPlacement {name: string; address: bigint; memSize: bigint; fileOffset: bigint; fileSize: bigint}
/**
 * `undo`: original bytes of every range of the runtime (thin slice) the image overwrites —
 * everything before the first section (header, load commands, header room) and the old
 * __LINKEDIT through the original end — for the manifest's undo log (images/README.md).
 */
export interface MachoImageLayout {segments: MachoSegmentPlacement[]; undo: {fileOffset: bigint; original: Buffer}[]; originalSize: bigint}
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

/** Build the image; `manifest` may be a function of the final layout (its own size does not move the segments). */
export function buildMachoImageDetailed(runtime: Buffer, segments: MachoImageSegment[],
  manifest: Buffer | ((layout: MachoImageLayout) => Buffer), opts: MachoImageOptions = {}): MachoImageResult {
  const thin = isFat(runtime) ? pickSlice(readFat(runtime), opts.arch).bytes : runtime
  const m = readMacho(thin)
  const page = pageSizeFor(m.header.cputype)
  const signed = findCommand(m, 'linkedit_data', LC.LC_CODE_SIGNATURE) !== undefined
  const heapSegs: NewSegment[] = segments.map(s => ({name: s.name, address: s.address, memSize: s.memSize, payload: loadPayload(s.payload)}))
  const manifestSeg = (payload: Buffer, address: bigint): NewSegment => ({name: MANIFEST_SEGMENT, address, memSize: alignUp(BigInt(payload.length || 1), page),
    payload, sections: [{sectname: MANIFEST_SECTION, addr: address, size: BigInt(payload.length), align: 3}], initprot: 1, maxprot: 1})
  // Refuse before touching anything if the load commands will not fit.
  const need = loadCommandsEnd(m) - (signed ? 16 : 0) + commandBytesNeeded([...heapSegs, manifestSeg(Buffer.alloc(0), 0n)], true)
  if (need > firstSectionOffset(m)) throw noRoom(need, firstSectionOffset(m))
  const oldLinkedit = segmentCommands(m).find(s => s.f.segname === '__LINKEDIT')
  const undo = [{fileOffset: 0n, original: Buffer.from(thin.subarray(0, firstSectionOffset(m)))}]
  if (oldLinkedit) undo.push({fileOffset: oldLinkedit.f.fileoff, original: Buffer.from(thin.subarray(Number(oldLinkedit.f.fileoff)))})
  const stripped = stripSignature(m)
  let droppedFixups = 0
  for (const r of opts.repoint ?? []) droppedFixups += repointSegment(m, r)
  insertSegments(m, heapSegs)
  const layout: MachoImageLayout = {segments: segmentCommands(m).filter(s => heapSegs.some(h => h.name === s.f.segname) || (opts.repoint ?? []).some(r => r.segment === s.f.segname))
    .map(s => ({name: s.f.segname, address: s.f.vmaddr, memSize: s.f.vmsize, fileOffset: s.f.fileoff, fileSize: s.f.filesize})),
  undo, originalSize: BigInt(thin.length)}
  const manifestBytes = typeof manifest === 'function' ? manifest(layout) : manifest
  const top = segmentCommands(m).filter(s => s.f.segname !== '__LINKEDIT').reduce((e, s) => (s.f.vmaddr + s.f.vmsize > e ? s.f.vmaddr + s.f.vmsize : e), 0n)
  insertSegments(m, [manifestSeg(manifestBytes, opts.manifestAddress ?? alignUp(top, page))])
  signAdhoc(m, {identifier: stripped.identifier ?? opts.identifier ?? 'imgdump-image', pageSizeLog2: stripped.pageSizeLog2})
  const image = writeMacho(m)
  const check = verifyMachoImage(image, {requireSignature: true})
  if (!check.ok) throw new MachoError('write', 'MACHO_BAD_LAYOUT', `the written image fails its layout check: ${check.problems.join('; ')}`)
  return {image, layout, warnings: stripped.warnings, droppedFixups}
}

export function buildMachoImage(runtime: Buffer, segments: MachoImageSegment[],
  manifest: Buffer | ((layout: MachoImageLayout) => Buffer), opts: MachoImageOptions = {}): Buffer {
  return buildMachoImageDetailed(runtime, segments, manifest, opts).image
}
