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
import {checkImageLayout} from './image-layout-check.js'
import {hex} from '../binary/hex.js'
import type {Manifest, ManifestLibrary} from './manifest.js'
import {findManifest, type FoundManifest} from './original-executable.js'
import {verifyFound} from './verify-image.js'

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
    const scan = new ElfScan(fdSource(fd))
    const found = findManifest(scan)
    if (!found) {
      throw new ImgdumpError('parse', 'NOT_AN_IMAGE', `${path} is an executable but not an imgdump image (it has no manifest note)`, {
        hint: 'run it directly, or save an image from a runtime linked with libimgdump',
      })
    }
    // --verify runs the full verification, which includes the layout check: do it once.
    let verifiedBytes = 0n
    if (verify) verifiedBytes = verifyAll(path, scan, found)
    else checkLayout(path, scan, found)
    checkLibraries(found.manifest, path)
    return {path, generation: found.manifest.generation, manifest: found.manifest, verifiedBytes}
  } finally {
    fs.closeSync(fd)
  }
}

function checkLayout(path: string, scan: ElfScan, found: FoundManifest): void {
  const problems = checkImageLayout(scan, found.manifest, found.offset, scan.src.size)
  if (problems.length > 0) {
    throw new ImgdumpError('verify', problems[0].code, `${path}: ${problems.map((p) => p.message).join('; ')}`, {
      hint: 'the image is damaged; save it again',
    })
  }
}

/**
 * The full verification of src/image (`imgdump verify`): manifest CRC, layout, every payload
 * CRC32C, heap header, undo log. Every problem is named; the first one's code is the error's.
 */
function verifyAll(path: string, scan: ElfScan, found: FoundManifest): bigint {
  const report = verifyFound(path, scan, found)
  if (!report.ok) {
    const first = report.problems[0]
    throw new ImgdumpError('verify', first?.code ?? 'IMAGE_INVALID', `${path} failed verification: ${report.problems.map((p) => p.message).join('; ')}`, {
      hint: 'the image was altered or damaged; save it again (`imgdump verify` lists every problem)',
    })
  }
  return BigInt(report.bytesChecked)
}

/** One manifest library checked against this machine (what `inspect` lists, what `restore` enforces). */
export interface LibraryCheck {
  path: string | null
  base: string
  /** The build-id recorded at save time (null: none recorded). */
  buildId: string | null
  present: boolean
  /** The build-id of the file here; read only when one was recorded. */
  currentBuildId: string | null
  ok: boolean
  problem?: string
  /** Why it is not ok: gone or unreadable, or a different build. */
  code?: 'LIBRARY_MISSING' | 'LIBRARY_MISMATCH'
}

/**
 * The rule the image itself enforces at start-up (native/src/restore-check.c): a library
 * recorded without a path is skipped; one with a recorded build-id must exist with that
 * build-id; one without only needs to exist. Reads headers and notes only.
 */
export function checkLibrary(lib: ManifestLibrary): LibraryCheck {
  const out: LibraryCheck = {path: lib.path, base: hex(lib.base), buildId: lib.buildId, present: false, currentBuildId: null, ok: false}
  if (!lib.path) return {...out, ok: true}
  if (!fs.existsSync(lib.path)) return {...out, problem: 'not found on this machine', code: 'LIBRARY_MISSING'}
  out.present = true
  if (!lib.buildId) return {...out, ok: true}
  try {
    out.currentBuildId = buildIdOf(lib.path)
  } catch (err) {
    return {...out, problem: `unreadable: ${err instanceof Error ? err.message : String(err)}`, code: 'LIBRARY_MISSING'}
  }
  out.ok = out.currentBuildId === lib.buildId
  if (!out.ok) {
    out.problem = `build-id ${out.currentBuildId ?? 'none'} ≠ saved ${lib.buildId}: the library changed since the save`
    out.code = 'LIBRARY_MISMATCH'
  }
  return out
}

/** Refuse (typed compat error) on the first library that fails checkLibrary. */
function checkLibraries(manifest: Manifest, image: string): void {
  for (const lib of manifest.libraries) {
    const r = checkLibrary(lib)
    if (r.ok) continue
    if (r.code === 'LIBRARY_MISSING') {
      throw new ImgdumpError('compat', 'LIBRARY_MISSING', `${image} was saved with ${lib.path}, which cannot be read here: ${r.problem}`, {
        value: lib.path ?? undefined,
        hint: 'restore on the machine (or container) the image was saved on, or rebuild the image from the runtime',
      })
    }
    throw new ImgdumpError('compat', 'LIBRARY_MISMATCH',
      `${lib.path} has changed since ${image} was saved (build-id ${r.currentBuildId ?? 'none'}, the image expects ${lib.buildId})`, {
        value: lib.path ?? undefined,
        hint: 'saved heaps hold addresses into the libraries: start the runtime afresh and save a new image',
      })
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
