/**
 * What `imgdump restore` checks before it hands the process to an image: it is an imgdump
 * image (an ELF file with a valid manifest note), its structure holds, optionally every
 * payload checksum, and the shared libraries it was saved with are still there with the
 * same build-id. Reads through src/image (manifest, layout check); never loads a whole
 * image into memory.
 */
import fs from 'node:fs'
import {crc32c} from '@node-rs/crc32'
import {ImgdumpError, ioError} from '../errors.js'
import {ElfScan, fdSource} from '../image/elf-scan.js'
import {checkImageLayout} from '../image/image-layout-check.js'
import type {Manifest} from '../image/manifest.js'
import {findManifest} from '../image/original-executable.js'

export interface ImageCheck {
  path: string
  generation: bigint
  manifest: Manifest
  /** Payload bytes whose CRC32C was checked (0 without --verify). */
  verifiedBytes: bigint
}

const CHUNK = 16 << 20

/** Open `path`, check it is an image that can run here; with `verify`, check every payload CRC. */
export function checkImage(path: string, verify: boolean): ImageCheck {
  let fd: number
  try {
    fd = fs.openSync(path, 'r')
  } catch (err) {
    throw ioError(err, path)
  }
  try {
    const st = fs.fstatSync(fd)
    if (!st.isFile()) throw new ImgdumpError('usage', 'NOT_A_FILE', `${path} is not a regular file`)
    const src = fdSource(fd)
    const scan = new ElfScan(src)
    const found = findManifest(scan)
    if (!found) {
      throw new ImgdumpError('parse', 'NOT_AN_IMAGE', `${path} is an executable but not an imgdump image (it has no manifest note)`, {
        hint: 'run it directly, or save an image from a runtime linked with libimgdump',
      })
    }
    const problems = checkImageLayout(scan, found.manifest, found.offset, src.size)
    if (problems.length > 0) {
      throw new ImgdumpError('verify', problems[0].code, `${path}: ${problems.map((p) => p.message).join('; ')}`, {
        hint: 'the image is damaged; save it again',
      })
    }
    const verifiedBytes = verify ? verifyPayloads(fd, src.size, found.manifest, path) : 0n
    checkLibraries(found.manifest, path)
    return {path, generation: found.manifest.generation, manifest: found.manifest, verifiedBytes}
  } finally {
    fs.closeSync(fd)
  }
}

/** CRC32C of every payload, read in large chunks. */
function verifyPayloads(fd: number, size: bigint, manifest: Manifest, path: string): bigint {
  const buf = Buffer.allocUnsafe(CHUNK)
  let total = 0n
  for (const p of manifest.payloads) {
    if (p.fileOffset + p.length > size) {
      throw new ImgdumpError('verify', 'IMAGE_TRUNCATED', `${path}: payload at ${p.fileOffset} (${p.length} bytes) lies past the end of the file`, {offset: p.fileOffset})
    }
    let crc = 0
    for (let done = 0n; done < p.length;) {
      const n = Number(p.length - done < BigInt(CHUNK) ? p.length - done : BigInt(CHUNK))
      const got = fs.readSync(fd, buf, 0, n, Number(p.fileOffset + done))
      if (got !== n) throw new ImgdumpError('verify', 'IMAGE_TRUNCATED', `${path}: short read at ${p.fileOffset + done}`, {offset: p.fileOffset + done})
      crc = crc32c(buf.subarray(0, n), crc)
      done += BigInt(n)
    }
    if (crc !== p.crc32c) {
      throw new ImgdumpError('verify', 'IMAGE_BAD_CHECKSUM',
        `${path}: the ${p.source} payload at file offset 0x${p.fileOffset.toString(16)} (${p.length} bytes) has CRC32C ${hex32(crc)}, the manifest says ${hex32(p.crc32c)}`,
        {offset: p.fileOffset, value: crc, hint: 'the image was altered or damaged; save it again'})
    }
    total += p.length
  }
  return total
}

const hex32 = (v: number) => '0x' + (v >>> 0).toString(16).padStart(8, '0')

/** Every library recorded with a path and build-id must still have that build-id. */
function checkLibraries(manifest: Manifest, image: string): void {
  for (const lib of manifest.libraries) {
    if (!lib.path || !lib.path.startsWith('/') || !lib.buildId) continue
    let current: string | null
    try {
      current = buildIdOf(lib.path)
    } catch (err) {
      throw new ImgdumpError('compat', 'LIBRARY_MISSING', `${image} was saved with ${lib.path}, which cannot be read here: ${(err as Error).message}`, {
        value: lib.path,
        hint: 'restore on the machine (or container) the image was saved on, or rebuild the image from the runtime',
      })
    }
    if (current !== lib.buildId) {
      throw new ImgdumpError('compat', 'LIBRARY_MISMATCH',
        `${lib.path} has changed since ${image} was saved (build-id ${current ?? 'none'}, the image expects ${lib.buildId})`, {
          value: lib.path,
          hint: 'saved heaps hold addresses into the libraries: start the runtime afresh and save a new image',
        })
    }
  }
}

function buildIdOf(path: string): string | null {
  const fd = fs.openSync(path, 'r')
  try {
    return new ElfScan(fdSource(fd)).buildId()
  } finally {
    fs.closeSync(fd)
  }
}
