/**
 * The original runtime executable behind a save. When the saving process runs from an image
 * (req.origin, or req.exe itself carries a manifest), the original bytes are rebuilt from the
 * image's undo log and checked against the recorded SHA-256, so images never accumulate
 * layers (DESIGN §5).
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {hex} from '../binary/hex.js'
import {fdSource, type ByteSource} from '../elf/byte-source.js'
import {ElfScan} from '../elf/scan.js'
import {decodeManifest, type Manifest} from './manifest.js'
import {MANIFEST_NOTE_OWNER, MANIFEST_NOTE_TYPE} from './manifest-fields.js'

export interface OriginalExecutable {
  bytes: Buffer
  /** Path of the original runtime (from the manifest when rebuilt from an image). */
  path: string
  digest: Buffer
  /** SHA-256 of that image's manifest bytes (the new image's parent), or null. */
  parentDigest: Buffer | null
}

export interface FoundManifest {manifest: Manifest; offset: bigint; size: number; bytes: Uint8Array}

/** How a parent image is named in a child's manifest: the SHA-256 of its manifest's
 * total_size bytes (a note descriptor may carry padding after them). */
function manifestDigest(bytes: Uint8Array): Buffer {
  const total = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(16)
  return crypto.createHash('sha256').update(bytes.subarray(0, Math.min(total, bytes.length))).digest()
}

/** The image manifest of an ELF file, or null when the file carries none. Throws if it is damaged. */
export function findManifest(scan: ElfScan): FoundManifest | null {
  const note = scan.notes().find((n) => n.name === MANIFEST_NOTE_OWNER && n.type === MANIFEST_NOTE_TYPE)
  if (!note) return null
  return {manifest: decodeManifest(note.desc, Number(note.descOffset)), offset: note.descOffset, size: note.desc.length, bytes: note.desc}
}

/** Apply an image's undo log to its first original_size bytes; the result is checked by digest. */
export function reconstructOriginal(src: ByteSource, manifest: Manifest, label: string): Buffer {
  if (manifest.originalSize > src.size) {
    throw new ImgdumpError('verify', 'IMAGE_TRUNCATED', `${label}: original_size ${manifest.originalSize} exceeds the file (${src.size} bytes)`,
      {value: manifest.originalSize})
  }
  const bytes = Buffer.from(src.read(0n, Number(manifest.originalSize)))
  for (const u of manifest.undo) {
    if (u.fileOffset + BigInt(u.original.length) > manifest.originalSize) {
      throw new ImgdumpError('verify', 'IMAGE_BAD_UNDO', `${label}: undo record at ${hex(u.fileOffset)} lies past original_size ${manifest.originalSize}`,
        {offset: u.fileOffset, hint: 'the image is damaged; save again from the original runtime executable'})
    }
    bytes.set(u.original, Number(u.fileOffset))
  }
  const digest = crypto.createHash('sha256').update(bytes).digest()
  if (!digest.equals(Buffer.from(manifest.runtimeDigest))) {
    throw new ImgdumpError('verify', 'IMAGE_ORIGINAL_DIGEST',
      `${label}: the undo log does not reconstruct the original executable (SHA-256 ${digest.toString('hex')} ≠ ${Buffer.from(manifest.runtimeDigest).toString('hex')})`,
      {hint: 'the image is damaged; save again from the original runtime executable'})
  }
  return bytes
}

/** An executable or image opened for loadOriginal: its manifest (null in a plain runtime) and bytes. */
export interface OpenedExecutable {found: Pick<FoundManifest, 'manifest' | 'bytes'> | null; src: ByteSource; close(): void}

export function readElfImageOrExe(path: string): OpenedExecutable {
  let fd: number
  try { fd = fs.openSync(path, 'r') } catch (err) { throw ioError(err, path) }
  try {
    const src = fdSource(fd)
    return {found: findManifest(new ElfScan(src)), src, close: () => fs.closeSync(fd)}
  } catch (err) {
    fs.closeSync(fd)
    throw err
  }
}

/**
 * The last original loaded. An orchestrator saving the same runtime again compares the bytes
 * (a memcmp) instead of hashing and validating them again; a process running from an image
 * (after IMGDUMP_EXEC) names its original by SHA-256 in the manifest, so equal digests reuse
 * the cached bytes without rebuilding them from the undo log. Keyed by content, not mtime: a
 * runtime rebuilt in place within one timestamp tick must not hit a stale entry.
 */
let recent: OriginalExecutable | null = null

/**
 * Load the original executable for a save from `origin` (an image) or `exe` (runtime or
 * image); `open` reads one candidate in its format (ELF by default; Mach-O: macho-plan.ts).
 * `exe` may be the process's /proc/PID/exe (running-executable.ts); `label` is then the path
 * to record and name in messages.
 */
export function loadOriginal(exe: string, origin: string | null, open: (path: string) => OpenedExecutable = readElfImageOrExe,
  label = exe): OriginalExecutable {
  for (const candidate of origin ? [origin, exe] : [exe]) {
    let f: OpenedExecutable
    try {
      f = open(candidate)
    } catch (err) {
      // The image a process was restored from may be gone; the running executable still tells.
      if (candidate !== exe && err instanceof ImgdumpError && err.phase === 'io') continue
      throw err
    }
    try {
      if (f.found) {
        const m = f.found.manifest
        const parentDigest = manifestDigest(f.found.bytes)
        const path = m.runtimePath ?? (candidate === exe ? label : candidate)
        if (recent && recent.digest.equals(Buffer.from(m.runtimeDigest))) return {...recent, path, parentDigest}
        const bytes = reconstructOriginal(f.src, m, candidate === exe ? label : candidate)
        recent = {bytes, path, digest: Buffer.from(m.runtimeDigest), parentDigest: null}
        return {...recent, parentDigest}
      }
      if (candidate === exe) {
        const read = f.src.read(0n, Number(f.src.size))
        const bytes = Buffer.from(read.buffer, read.byteOffset, read.length)
        if (recent && recent.bytes.equals(bytes)) return {...recent, path: label, parentDigest: null}
        recent = {bytes, path: label, digest: crypto.createHash('sha256').update(bytes).digest(), parentDigest: null}
        return recent
      }
    } finally {
      f.close()
    }
  }
  throw new ImgdumpError('internal', 'UNREACHABLE', 'loadOriginal found nothing')
}
