/**
 * The checks of an image's contents against its manifest that do not depend on the
 * executable format, shared by `imgdump verify` on ELF images (verify-image.ts) and the
 * Mach-O image validator (src/image/macho-verify.ts): every payload's CRC32C over the file, and
 * the undo log rebuilding the original executable whose SHA-256 the manifest records.
 */
import {crc32c} from '@node-rs/crc32'
import {hex} from '../binary/hex.js'
import type {ByteSource} from '../elf/byte-source.js'
import {ImgdumpError} from '../errors.js'
import type {ImageProblem} from './image-layout-check.js'
import type {Manifest} from './manifest.js'
import {reconstructOriginal} from './original-executable.js'

/** Payloads are read in pieces of this size: one may be many GiB. */
const CHUNK = 16 << 20

export function problemOf(err: unknown): ImageProblem {
  if (err instanceof ImgdumpError) return {code: err.code, message: err.message}
  throw err
}

export function payloadCrc(src: ByteSource, offset: bigint, length: bigint): number {
  if (offset + length > src.size) {
    throw new ImgdumpError('verify', 'IMAGE_TRUNCATED', `payload at ${hex(offset)} runs past the end of the file`, {offset})
  }
  let crc = 0
  // One buffer for the whole payload where the source can fill it (files: no GiB of garbage).
  const buf = src.readInto && length > 0n ? Buffer.allocUnsafe(length < BigInt(CHUNK) ? Number(length) : CHUNK) : undefined
  for (let done = 0n; done < length;) {
    const n = length - done < BigInt(CHUNK) ? Number(length - done) : CHUNK
    crc = crc32c(buf ? src.readInto!(offset + done, n, buf) : src.read(offset + done, n), crc)
    done += BigInt(n)
  }
  return crc >>> 0
}

/** Every payload's CRC32C recomputed from the file; `bytes` is how many were read. */
export function checkPayloads(src: ByteSource, m: Manifest): {problems: ImageProblem[]; checked: number; bytes: bigint} {
  const problems: ImageProblem[] = []
  let checked = 0
  let bytes = 0n
  for (const p of m.payloads) {
    try {
      const crc = payloadCrc(src, p.fileOffset, p.length)
      if (crc !== p.crc32c) {
        problems.push({code: 'IMAGE_PAYLOAD_CRC', message: `payload at ${hex(p.fileOffset)} (+${hex(p.length)}, ${p.source}): CRC32C 0x${crc.toString(16)} ≠ recorded 0x${p.crc32c.toString(16)}`})
      }
      bytes += p.length
      checked++
    } catch (err) { problems.push(problemOf(err)) }
  }
  return {problems, checked, bytes}
}

/** The undo log applied to the first original_size bytes must give the recorded SHA-256. */
export function checkUndo(src: ByteSource, m: Manifest, label: string): ImageProblem[] {
  try {
    reconstructOriginal(src, m, label)
    return []
  } catch (err) { return [problemOf(err)] }
}
