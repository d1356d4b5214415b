/**
 * Verification of Mach-O imgdump images: the Mach-O layout validator (src/macho/verify.ts)
 * plus, per slice, the image's own facts — the __IMGDUMP,__manifest section decodes (its CRC),
 * every payload CRC over the file, the undo log covered by payloads, the manifest's segments
 * matching the load commands, and arm64 images signed. Never throws for bad input.
 */
import {bufferSource} from '../elf/byte-source.js'
import {hex} from '../binary/hex.js'
import {segmentCommands, type MachoFile} from '../macho/model.js'
import {verifyMacho, type SliceCheck, type VerifyOptions, type VerifyResult} from '../macho/verify.js'
import {decodeManifest} from './manifest.js'
import {checkPayloads, checkUndo} from './manifest-checks.js'

/** Where a Mach-O image keeps its manifest: a section of a segment of its own. */
export const MANIFEST_SEGMENT = '__IMGDUMP', MANIFEST_SECTION = '__manifest'

/** The manifest section of a slice, or undefined in a plain Mach-O file. */
export function manifestSection(m: MachoFile) {
  return segmentCommands(m).flatMap((s) => s.sections).find((x) => x.segname === MANIFEST_SEGMENT && x.sectname === MANIFEST_SECTION)
}

const imageChecks: SliceCheck = {
  mustBeSigned: (m) => manifestSection(m) !== undefined,
  problems: (m, buf) => checkManifest(m, buf),
}

/** Verify any Mach-O or fat file; slices that are imgdump images get the image checks too. */
export function verifyMachoImage(buf: Buffer, opts: Omit<VerifyOptions, 'slice'> = {}): VerifyResult {
  return verifyMacho(buf, {...opts, slice: imageChecks})
}

/** In images: decode __IMGDUMP,__manifest (its own CRC) and recompute every payload CRC. */
function checkManifest(m: MachoFile, buf: Buffer): string[] {
  const sec = manifestSection(m)
  if (!sec) return []
  const problems: string[] = []
  try {
    const man = decodeManifest(buf.subarray(sec.offset, sec.offset + Number(sec.size)), sec.offset)
    const src = bufferSource(buf)
    problems.push(...checkPayloads(src, man).problems.map((p) => p.message))
    if (man.originalSize > 0n) problems.push(...checkUndo(src, man, 'image').map((p) => p.message))
    for (let i = 1; i < man.payloads.length; i++) {
      const a = man.payloads[i - 1], b = man.payloads[i]
      if (b.fileOffset < a.fileOffset + a.length) problems.push(`manifest payloads at ${hex(a.fileOffset)} and ${hex(b.fileOffset)} are unsorted or overlap`)
    }
    for (const u of man.undo) {
      // images/README.md: every byte an undo record restores is covered by a payload.
      let cur = u.fileOffset
      const end = u.fileOffset + BigInt(u.original.length)
      for (const p of man.payloads) if (p.fileOffset <= cur && p.fileOffset + p.length > cur) cur = p.fileOffset + p.length
      if (cur < end) problems.push(`manifest undo range ${hex(u.fileOffset)}+${hex(u.original.length)} not covered by payloads from ${hex(cur)}`)
    }
    for (const s of man.segments) {
      const seg = segmentCommands(m).find(x => x.f.vmaddr === s.address)
      if (!seg) problems.push(`manifest segment at ${hex(s.address)} has no LC_SEGMENT_64`)
      else if (seg.f.fileoff !== s.fileOffset && s.fileSize > 0n || seg.f.filesize !== s.fileSize) problems.push(`manifest segment at ${hex(s.address)} disagrees with ${seg.f.segname}`)
    }
  } catch (e) { problems.push((e as Error).message) }
  return problems
}

