/**
 * What `imgdump restore` checks before it hands the process to an image: it is an imgdump
 * image (an ELF file with a valid manifest note), its structure holds, optionally every
 * payload checksum, and the shared libraries it was saved with are still there with the
 * same build-id. Reads through src/image (manifest, layout check); never loads a whole
 * image into memory.
 */
import fs from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {fdSource} from '../elf/byte-source.js'
import {ElfScan} from '../elf/scan.js'
import {checkImageLayout} from '../image/image-layout-check.js'
import type {Manifest} from '../image/manifest.js'
import {findManifest} from '../image/original-executable.js'
import {verifyImage} from '../image/verify-image.js'

export interface ImageCheck {
  path: string
  generation: bigint
  manifest: Manifest
  /** Payload bytes whose CRC32C was checked (0 without --verify). */
  verifiedBytes: bigint
}

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
    const verifiedBytes = verify ? verifyAll(path) : 0n
    checkLibraries(found.manifest, path)
    return {path, generation: found.manifest.generation, manifest: found.manifest, verifiedBytes}
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * The full verification of src/image (`imgdump verify`): manifest CRC, layout, every payload
 * CRC32C, heap header, undo log. Every problem is named; the first one's code is the error's.
 */
function verifyAll(path: string): bigint {
  const report = verifyImage(path)
  if (!report.ok) {
    const first = report.problems[0]
    throw new ImgdumpError('verify', first?.code ?? 'IMAGE_INVALID', `${path} failed verification: ${report.problems.map((p) => p.message).join('; ')}`, {
      hint: 'the image was altered or damaged; save it again (`imgdump verify` lists every problem)',
    })
  }
  return BigInt(report.bytesChecked)
}

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
