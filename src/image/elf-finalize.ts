/**
 * Write everything of an ELF image that does not come from the runtime's memory: the patched
 * original bytes and the file-taken ranges of the data segment (prepareElfOutput, any time
 * before finalize), then the program header table and manifest note (finalizeElfImage), then
 * re-read and validate the file before it is committed. Two-phase: every offset was reserved
 * by the planner; writes here assert they land where planned.
 */
import fs from 'node:fs'
import {encodeStruct, encodeStructs} from '../binary/field-table.js'
import {NoteHeaderDef, ProgramHeaderDef} from '../elf/definitions.js'
import {ImgdumpError} from '../errors.js'
import {NOTE_OWNER_BYTES, NOTE_PREFIX, type ElfImagePlan} from './elf-plan.js'
import {alignUp} from '../binary/align.js'
import {finalizeFrame, writeAt} from './finalize-frame.js'
import {fdSource} from '../elf/byte-source.js'
import {ElfScan} from '../elf/scan.js'
import {faultPoint} from './fault-point.js'
import {checkImageLayout} from './image-layout-check.js'
import {encodeManifest} from './manifest.js'
import {MANIFEST_NOTE_TYPE} from './manifest-fields.js'
import {findManifest} from './original-executable.js'
import type {PendingOutput, SaveIncrement, SaveResult} from './save-types.js'

/** Write the original (patched) bytes and the data ranges taken from the file. Idempotent. */
export function prepareElfOutput(plan: ElfImagePlan, pending: PendingOutput): void {
  const s = plan.elf
  if (s.prepared) return
  writeAt(pending.fd, s.patched, 0n)
  for (const c of s.copies) writeAt(pending.fd, c.bytes, c.offset)
  s.prepared = true
}

/** The tail: program header table, then the manifest note (owner "IMGDUMP", type "IMG1"). */
function tailBytes(plan: ElfImagePlan, manifest: Uint8Array): Uint8Array {
  const s = plan.elf
  const ph = encodeStructs(ProgramHeaderDef, s.phdrs)
  const note = new Uint8Array(NOTE_PREFIX + Number(alignUp(BigInt(manifest.length), 4n)))
  encodeStruct(NoteHeaderDef, {n_namesz: NOTE_OWNER_BYTES.length, n_descsz: manifest.length, n_type: MANIFEST_NOTE_TYPE}, note, 0)
  note.set(NOTE_OWNER_BYTES, NoteHeaderDef.size)
  note.set(manifest, NOTE_PREFIX)
  if (s.tailOffset + BigInt(ph.length) !== s.noteOffset) throw new ImgdumpError('internal', 'LAYOUT_DRIFT', 'note offset drifted from the plan')
  const out = new Uint8Array(ph.length + note.length)
  out.set(ph, 0)
  out.set(note, ph.length)
  return out
}

/**
 * Finish the image after the runtime wrote its ranges (`crcs`: one CRC32C per planned write,
 * in order) and commit it atomically. On any failure the temp file is discarded.
 */
export function finalizeElfImage(plan: ElfImagePlan, pending: PendingOutput, crcs: readonly number[], increment?: SaveIncrement): SaveResult {
  const s = plan.elf
  return finalizeFrame(plan, pending, crcs, s.startedAt, () => {
    prepareElfOutput(plan, pending)
    const manifest = {...s.manifest, payloads: s.manifest.payloads.map((p) => ({...p})), segments: recordTracking(plan, increment)}
    s.memoryPayload.forEach((pi, wi) => { manifest.payloads[pi].crc32c = crcs[wi] >>> 0 })
    const bytes = encodeManifest(manifest)
    if (bytes.length !== s.manifestSize) throw new ImgdumpError('internal', 'LAYOUT_DRIFT', `manifest is ${bytes.length} bytes, planned ${s.manifestSize}`)
    const tail = tailBytes(plan, bytes)
    writeAt(pending.fd, tail, s.tailOffset)
    if (s.tailOffset + BigInt(tail.length) !== plan.fileSize) throw new ImgdumpError('internal', 'LAYOUT_DRIFT', 'file size drifted from the plan')
    fs.ftruncateSync(pending.fd, Number(plan.fileSize))
    faultPoint('headers')
    validateWritten(plan, pending.fd)
    pending.commit()
  }, increment)
}

/** The segments with how the save knew its written pages, and how many of each it wrote. */
function recordTracking(plan: ElfImagePlan, increment: SaveIncrement | undefined) {
  const segments = plan.elf.manifest.segments.map((seg) => ({...seg}))
  if (!increment) return segments
  const memory = segments.filter((seg) => seg.role !== 'reservation')
  for (const seg of memory) { seg.tracking = increment.tracking; seg.pagesWritten = 0n }
  plan.writes.forEach((w, i) => {
    const seg = memory.find((x) => w.addr >= x.address && w.addr < x.address + x.memSize)
    if (seg) seg.pagesWritten! += (w.size + 4095n) / 4096n - BigInt(increment.fromPrevious?.[i] ?? 0)
  })
  return segments
}

/** Re-read the written headers and manifest from the file and run the layout validator. */
function validateWritten(plan: ElfImagePlan, fd: number): void {
  const src = fdSource(fd)
  const scan = new ElfScan(src)
  const found = findManifest(scan)
  if (!found) throw new ImgdumpError('write', 'IMAGE_WRITE_CHECK', 'the written image has no manifest note')
  const problems = checkImageLayout(scan, found.manifest, found.offset, src.size)
  if (src.size !== plan.fileSize) problems.push({code: 'IMAGE_SIZE', message: `file is ${src.size} bytes, planned ${plan.fileSize}`})
  if (problems.length > 0) {
    throw new ImgdumpError('write', 'IMAGE_WRITE_CHECK', `the written image failed its layout check: ${problems.map((p) => p.message).join('; ')}`)
  }
}
