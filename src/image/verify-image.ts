/**
 * `imgdump verify`: structural validation and every checksum of an image — the manifest's own
 * CRC, the layout checks, each payload's CRC32C (read in large chunks), the heap header's
 * generation against the manifest, and the undo log reconstructing an original executable
 * whose SHA-256 is the recorded runtime digest. Collects every problem instead of stopping
 * at the first, so one run says everything that is wrong.
 */
import {crc32c} from '@node-rs/crc32'
import {decodeStruct} from '../binary/field-table.js'
import fs from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {hex} from '../binary/hex.js'
import {fdSource, type ByteSource} from '../elf/byte-source.js'
import {ElfScan} from '../elf/scan.js'
import {checkImageLayout, type ImageProblem} from './image-layout-check.js'
import type {Manifest, ManifestSegment} from './manifest.js'
import {findManifest, reconstructOriginal, type FoundManifest} from './original-executable.js'
import {HEAP_MAGIC, HeapHeaderFixed, type HeapHeaderFixedValue} from '../heap/definitions.js'

export interface VerifyReport {
  path: string
  ok: boolean
  generation: string | null
  payloads: number
  bytesChecked: string
  problems: ImageProblem[]
}

const CHUNK = 16 << 20

export function payloadCrc(fd: number, offset: bigint, length: bigint, buf: Buffer): number {
  let crc = 0
  let done = 0n
  while (done < length) {
    const want = Number(length - done < BigInt(buf.length) ? length - done : BigInt(buf.length))
    const n = fs.readSync(fd, buf, 0, want, Number(offset + done))
    if (n === 0) throw new ImgdumpError('verify', 'IMAGE_TRUNCATED', `file ends inside the payload at ${hex(offset)}`, {offset: offset + done})
    crc = crc32c(buf.subarray(0, n), crc)
    done += BigInt(n)
  }
  return crc >>> 0
}

function problemOf(err: unknown): ImageProblem {
  if (err instanceof ImgdumpError) return {code: err.code, message: err.message}
  throw err
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
    return verifyFound(path, fd, scan, found)
  } finally {
    fs.closeSync(fd)
  }
}

function emptyReport(path: string): VerifyReport {
  return {path, ok: false, generation: null, payloads: 0, bytesChecked: '0', problems: []}
}

/**
 * verifyImage on a file already open and scanned (`fd` backs `scan.src`), for a caller that
 * has found the manifest itself (restore --verify): layout, payload CRCs, heap header, undo log.
 */
export function verifyFound(path: string, fd: number, scan: ElfScan, found: FoundManifest): VerifyReport {
  const report = emptyReport(path)
  const src = scan.src
  const m = found.manifest
  report.generation = m.generation.toString()
  report.problems.push(...checkImageLayout(scan, m, found.offset, src.size))
  const buf = Buffer.allocUnsafe(CHUNK)
  let bytes = 0n
  for (const p of m.payloads) {
    try {
      if (p.fileOffset + p.length > src.size) throw new ImgdumpError('verify', 'IMAGE_TRUNCATED', `payload at ${hex(p.fileOffset)} runs past the end of the file`)
      const crc = payloadCrc(fd, p.fileOffset, p.length, buf)
      if (crc !== p.crc32c) {
        report.problems.push({code: 'IMAGE_PAYLOAD_CRC', message: `payload at ${hex(p.fileOffset)} (+${hex(p.length)}, ${p.source}): CRC32C 0x${crc.toString(16)} ≠ recorded 0x${p.crc32c.toString(16)}`})
      }
      bytes += p.length
      report.payloads++
    } catch (err) { report.problems.push(problemOf(err)) }
  }
  report.bytesChecked = bytes.toString()
  try {
    const h = heapHeaderFields(src, m)
    if (!h) report.problems.push({code: 'IMAGE_NO_HEAP_HEADER', message: `no heap segment holds the heap header at ${hex(m.heapHeader)}`})
    else if (h.magic !== HEAP_MAGIC) report.problems.push({code: 'IMAGE_HEAP_MAGIC', message: `heap header at ${hex(m.heapHeader)} has no IDMPHEAP magic`})
    else if (h.generation !== m.generation) {
      report.problems.push({code: 'IMAGE_GENERATION', message: `heap header generation ${h.generation} ≠ manifest generation ${m.generation}`})
    }
  } catch (err) { report.problems.push(problemOf(err)) }
  try { reconstructOriginal(src, m, path) } catch (err) { report.problems.push(problemOf(err)) }
  report.ok = report.problems.length === 0
  return report
}
