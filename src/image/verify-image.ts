/**
 * `imgdump verify`: structural validation and every checksum of an image — the manifest's own
 * CRC, the layout checks, each payload's CRC32C (read in large chunks), the heap header's
 * generation against the manifest, and the undo log reconstructing an original executable
 * whose SHA-256 is the recorded runtime digest. Collects every problem instead of stopping
 * at the first, so one run says everything that is wrong.
 */
import {decodeStruct} from '../binary/field-table.js'
import fs from 'node:fs'
import {ioError} from '../errors.js'
import {hex} from '../binary/hex.js'
import {fdSource, type ByteSource} from '../elf/byte-source.js'
import {ElfScan} from '../elf/scan.js'
import {checkImageLayout, type ImageProblem} from './image-layout-check.js'
import type {Manifest, ManifestSegment} from './manifest.js'
import {findManifest, type FoundManifest} from './original-executable.js'
import {checkPayloads, checkUndo, problemOf} from './manifest-checks.js'
import {HEAP_MAGIC, HeapHeaderFixed, type HeapHeaderFixedValue} from '../heap/definitions.js'

export interface VerifyReport {
  path: string
  ok: boolean
  generation: string | null
  payloads: number
  bytesChecked: string
  problems: ImageProblem[]
}

/** The heap-role segment whose file bytes hold the heap header's fixed part (docs/heap-layout.md). */
export function heapSegment(manifest: Manifest): ManifestSegment | undefined {
  const h = manifest.heapHeader
  return manifest.segments.find((s) => s.role === 'heap' && h >= s.address && h + BigInt(HeapHeaderFixed.size) <= s.address + s.fileSize)
}

/** The heap header's fixed fields as the image file holds them, or null without a heap segment. */
export function heapHeaderFields(src: ByteSource, manifest: Manifest): HeapHeaderFixedValue | null {
  const seg = heapSegment(manifest)
  if (!seg) return null
  return decodeStruct(HeapHeaderFixed, src.read(seg.fileOffset + (manifest.heapHeader - seg.address), HeapHeaderFixed.size), 0)
}

export function verifyImage(path: string): VerifyReport {
  let fd: number
  try { fd = fs.openSync(path, 'r') } catch (err) { throw ioError(err, path) }
  try {
    const src = fdSource(fd)
    let scan: ElfScan
    let found: FoundManifest | null
    try {
      scan = new ElfScan(src)
      found = findManifest(scan)
    } catch (err) {
      return {...emptyReport(path), problems: [problemOf(err)]}
    }
    if (!found) return {...emptyReport(path), problems: [{code: 'IMAGE_NO_MANIFEST', message: `${path} is not an imgdump image (no IMGDUMP manifest note)`}]}
    return verifyFound(path, scan, found)
  } finally {
    fs.closeSync(fd)
  }
}

function emptyReport(path: string): VerifyReport {
  return {path, ok: false, generation: null, payloads: 0, bytesChecked: '0', problems: []}
}

/**
 * verifyImage on a file already scanned, for a caller that has found the manifest itself
 * (restore --verify): layout, payload CRCs, heap header, undo log.
 */
export function verifyFound(path: string, scan: ElfScan, found: FoundManifest): VerifyReport {
  const report = emptyReport(path)
  const src = scan.src
  const m = found.manifest
  report.generation = m.generation.toString()
  report.problems.push(...checkImageLayout(scan, m, found.offset, src.size))
  const payloads = checkPayloads(src, m)
  report.problems.push(...payloads.problems)
  report.payloads = payloads.checked
  report.bytesChecked = payloads.bytes.toString()
  try {
    const h = heapHeaderFields(src, m)
    if (!h) report.problems.push({code: 'IMAGE_NO_HEAP_HEADER', message: `no heap segment holds the heap header at ${hex(m.heapHeader)}`})
    else if (h.magic !== HEAP_MAGIC) report.problems.push({code: 'IMAGE_HEAP_MAGIC', message: `heap header at ${hex(m.heapHeader)} has no IDMPHEAP magic`})
    else if (h.generation !== m.generation) {
      report.problems.push({code: 'IMAGE_GENERATION', message: `heap header generation ${h.generation} ≠ manifest generation ${m.generation}`})
    }
  } catch (err) { report.problems.push(problemOf(err)) }
  report.problems.push(...checkUndo(src, m, path))
  report.ok = report.problems.length === 0
  return report
}
