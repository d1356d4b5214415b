/**
 * Encode and decode the image manifest v1 (images/README.md). Decoding checks every bound
 * before it reads and the CRC32C before it trusts a field beyond the sizes; every failure is
 * an ImgdumpError with a MANIFEST_* code (phase 'parse' for structure, 'verify' for the
 * checksum) carrying the offending offset and value.
 */
import {crc32c} from '@node-rs/crc32'
import {ImgdumpError} from '../errors.js'
import type {TrackingMethod} from './save-types.js'
import {decodeStruct, encodeStruct, type StructDef} from '../binary/field-table.js'
import {
  LibraryRecordDef, MANIFEST_MAGIC, MANIFEST_VERSION, ManifestHeaderDef, NO_STRING, PAYLOAD_SOURCE,
  PayloadRecordDef, SEGMENT_ROLE, SEGMENT_TRACKING, SegmentRecordDef, UndoRecordDef, type PayloadSource, type SegmentRole,
} from './manifest-fields.js'

export interface ManifestLibrary {base: bigint; path: string | null; buildId: string | null}
export interface ManifestSegment {
  role: SegmentRole; address: bigint; memSize: bigint; fileOffset: bigint; fileSize: bigint
  /** Recorded by saves since the session loop: how written pages were known, and how many of this segment's were written. */
  tracking?: TrackingMethod
  pagesWritten?: bigint
}
export interface ManifestPayload {fileOffset: bigint; length: bigint; crc32c: number; source: PayloadSource}
export interface ManifestUndo {fileOffset: bigint; original: Uint8Array}

export interface Manifest {
  generation: bigint
  createdNs: bigint
  heapHeader: bigint
  loadBias: bigint
  stackLimit: bigint
  /** MANIFEST_FLAGS bits. */
  flags: number
  /** MANIFEST_FORMAT value. */
  format: number
  runtimePath: string | null
  /** SHA-256 of the original executable, 32 bytes. */
  runtimeDigest: Uint8Array
  originalSize: bigint
  /** SHA-256 of the parent image's manifest (the image the saving process came from), or null. */
  parentDigest: Uint8Array | null
  libraries: ManifestLibrary[]
  segments: ManifestSegment[]
  payloads: ManifestPayload[]
  undo: ManifestUndo[]
}

export type ManifestErrorCode =
  | 'MANIFEST_TRUNCATED' | 'MANIFEST_BAD_MAGIC' | 'MANIFEST_BAD_VERSION' | 'MANIFEST_BAD_HEADER'
  | 'MANIFEST_BAD_SIZE' | 'MANIFEST_BAD_CRC' | 'MANIFEST_BAD_STRING' | 'MANIFEST_BAD_UNDO'
  | 'MANIFEST_BAD_SEGMENT' | 'MANIFEST_BAD_PAYLOAD' | 'MANIFEST_BAD_FIELD' | 'MANIFEST_TOO_LARGE'

export function manifestError(phase: 'parse' | 'verify' | 'write', code: ManifestErrorCode, message: string,
  offset?: number | bigint, value?: number | bigint | string): ImgdumpError {
  return new ImgdumpError(phase, code, `manifest: ${message} [${code}]`, {offset, value})
}

const CRC_OFFSET = 20
const U32_MAX = 0xffffffff

/** Strings and undo bytes, appended once each; strings are deduplicated. */
class BlobBuilder {
  private parts: Uint8Array[] = []
  private size = 0
  private strings = new Map<string, number>()
  addString(s: string | null): number {
    if (s === null) return NO_STRING
    const known = this.strings.get(s)
    if (known !== undefined) return known
    if (s.includes('\0')) throw manifestError('write', 'MANIFEST_BAD_STRING', `string contains NUL: ${JSON.stringify(s)}`)
    const at = this.add(Buffer.from(s + '\0', 'utf8'))
    this.strings.set(s, at)
    return at
  }
  add(bytes: Uint8Array): number {
    const at = this.size
    this.parts.push(bytes)
    this.size += bytes.length
    if (this.size > U32_MAX) throw manifestError('write', 'MANIFEST_TOO_LARGE', 'blob exceeds 4 GiB')
    return at
  }
  bytes(): Uint8Array { return Buffer.concat(this.parts) }
}

const roleCode = (r: SegmentRole) => SEGMENT_ROLE[r]
const roleName = new Map<number, SegmentRole>(Object.entries(SEGMENT_ROLE).map(([k, v]) => [v, k as SegmentRole]))
const trackingName = new Map<number, TrackingMethod>(Object.entries(SEGMENT_TRACKING).map(([k, v]) => [v as number, k as TrackingMethod]))
const sourceName = new Map<number, PayloadSource>(Object.entries(PAYLOAD_SOURCE).map(([k, v]) => [v, k as PayloadSource]))

/** Serialise a manifest; the CRC32C is computed over the result with the crc field zero. */
export function encodeManifest(m: Manifest): Uint8Array {
  if (m.runtimeDigest.length !== 32) throw manifestError('write', 'MANIFEST_BAD_FIELD', 'runtime digest must be 32 bytes', undefined, m.runtimeDigest.length)
  if (m.parentDigest && m.parentDigest.length !== 32) throw manifestError('write', 'MANIFEST_BAD_FIELD', 'parent digest must be 32 bytes', undefined, m.parentDigest.length)
  const blob = new BlobBuilder()
  const runtimePath = blob.addString(m.runtimePath)
  const libs = m.libraries.map((l) => ({base: l.base, path: blob.addString(l.path), build_id: blob.addString(l.buildId), reserved: 0n}))
  const undo = m.undo.map((u) => ({file_offset: u.fileOffset, length: u.original.length, blob_offset: blob.add(u.original)}))
  const blobBytes = blob.bytes()
  const tables: [StructDef, Record<string, unknown>[]][] = [
    [LibraryRecordDef, libs],
    [SegmentRecordDef, m.segments.map((s) => ({role: roleCode(s.role), tracking: s.tracking ? SEGMENT_TRACKING[s.tracking] : 0,
      address: s.address, mem_size: s.memSize, file_offset: s.fileOffset, file_size: s.fileSize, pages_written: s.pagesWritten ?? 0n}))],
    [PayloadRecordDef, m.payloads.map((p) => ({file_offset: p.fileOffset, length: p.length, crc32c: p.crc32c >>> 0, source: PAYLOAD_SOURCE[p.source]}))],
    [UndoRecordDef, undo],
  ]
  let total = ManifestHeaderDef.size + blobBytes.length
  for (const [def, rows] of tables) total += def.size * rows.length
  if (total > U32_MAX) throw manifestError('write', 'MANIFEST_TOO_LARGE', `manifest of ${total} bytes exceeds 4 GiB`)
  const out = new Uint8Array(total)
  encodeStruct(ManifestHeaderDef, {
    magic: Buffer.from(MANIFEST_MAGIC, 'latin1'), version: MANIFEST_VERSION, header_size: ManifestHeaderDef.size,
    total_size: total, crc32c: 0, generation: m.generation, created_ns: m.createdNs, heap_header: m.heapHeader,
    load_bias: m.loadBias, stack_limit: m.stackLimit, flags: m.flags, format: m.format,
    n_libraries: libs.length, n_segments: m.segments.length, n_payloads: m.payloads.length, n_undo: undo.length,
    blob_size: blobBytes.length, runtime_path: runtimePath, runtime_digest: m.runtimeDigest, original_size: m.originalSize,
    parent_digest: m.parentDigest ?? new Uint8Array(32),
  }, out, 0)
  let at = ManifestHeaderDef.size
  for (const [def, rows] of tables) {
    for (const row of rows) { encodeStruct(def, row as never, out, at); at += def.size }
  }
  out.set(blobBytes, at)
  new DataView(out.buffer).setUint32(CRC_OFFSET, crc32c(out) >>> 0, true)
  return out
}

/** The CRC32C a manifest should carry: over all of it with the crc field taken as zero. */
function manifestCrc(buf: Uint8Array): number {
  const copy = Uint8Array.from(buf)
  copy.fill(0, CRC_OFFSET, CRC_OFFSET + 4)
  return crc32c(copy) >>> 0
}

/**
 * Decode a manifest from the start of `buf` (which may be longer, e.g. a padded note
 * descriptor). `base` is the manifest's offset in the file, for error offsets.
 */
export function decodeManifest(buf: Uint8Array, base = 0): Manifest {
  if (buf.length < ManifestHeaderDef.size) {
    throw manifestError('parse', 'MANIFEST_TRUNCATED', `${buf.length} bytes, the header alone is ${ManifestHeaderDef.size}`, base, buf.length)
  }
  const h = decodeStruct(ManifestHeaderDef, buf, 0)
  if (Buffer.from(h.magic).toString('latin1') !== MANIFEST_MAGIC) {
    throw manifestError('parse', 'MANIFEST_BAD_MAGIC', 'not an imgdump manifest (bad magic)', base, Buffer.from(h.magic).toString('hex'))
  }
  if (h.version !== MANIFEST_VERSION) {
    throw manifestError('parse', 'MANIFEST_BAD_VERSION', `version ${h.version}, this imgdump reads version ${MANIFEST_VERSION}`, base + 8, h.version)
  }
  if (h.header_size !== ManifestHeaderDef.size) {
    throw manifestError('parse', 'MANIFEST_BAD_HEADER', `header_size ${h.header_size}, want ${ManifestHeaderDef.size}`, base + 12, h.header_size)
  }
  // Counts are u32: the sum fits a double exactly, so no overflow below.
  const expected = ManifestHeaderDef.size + h.n_libraries * LibraryRecordDef.size + h.n_segments * SegmentRecordDef.size +
    h.n_payloads * PayloadRecordDef.size + h.n_undo * UndoRecordDef.size + h.blob_size
  if (h.total_size !== expected) {
    throw manifestError('parse', 'MANIFEST_BAD_SIZE', `total_size ${h.total_size} does not match its tables (${expected})`, base + 16, h.total_size)
  }
  if (h.total_size > buf.length) {
    throw manifestError('parse', 'MANIFEST_TRUNCATED', `total_size ${h.total_size} runs past the ${buf.length} bytes available`, base + 16, h.total_size)
  }
  const bytes = buf.subarray(0, h.total_size)
  const crc = manifestCrc(bytes)
  if (crc !== h.crc32c) {
    throw manifestError('verify', 'MANIFEST_BAD_CRC', `checksum mismatch: stored 0x${h.crc32c.toString(16)}, computed 0x${crc.toString(16)}`, base + CRC_OFFSET, h.crc32c)
  }
  return decodeTables(bytes, h, base)
}

function decodeTables(bytes: Uint8Array, h: ReturnType<typeof decodeStruct<typeof ManifestHeaderDef>>, base: number): Manifest {
  let at = ManifestHeaderDef.size
  const rows = <S extends StructDef>(def: S, n: number) => {
    const out = []
    for (let i = 0; i < n; i++, at += def.size) out.push({at, rec: decodeStruct(def, bytes, at)})
    return out
  }
  const libs = rows(LibraryRecordDef, h.n_libraries)
  const segs = rows(SegmentRecordDef, h.n_segments)
  const pays = rows(PayloadRecordDef, h.n_payloads)
  const undos = rows(UndoRecordDef, h.n_undo)
  const blobAt = at
  const blob = bytes.subarray(blobAt, blobAt + h.blob_size)
  const str = (off: number, fieldAt: number): string | null => {
    if (off === NO_STRING) return null
    const end = off < blob.length ? blob.indexOf(0, off) : -1
    if (end < 0) throw manifestError('parse', 'MANIFEST_BAD_STRING', `string offset ${off} outside the blob or unterminated`, base + fieldAt, off)
    return Buffer.from(blob.subarray(off, end)).toString('utf8')
  }
  return {
    generation: h.generation, createdNs: h.created_ns, heapHeader: h.heap_header, loadBias: h.load_bias,
    stackLimit: h.stack_limit, flags: h.flags, format: h.format, runtimePath: str(h.runtime_path, 92),
    runtimeDigest: Uint8Array.from(h.runtime_digest), originalSize: h.original_size,
    parentDigest: h.parent_digest.some((b: number) => b !== 0) ? Uint8Array.from(h.parent_digest) : null,
    libraries: libs.map(({at: a, rec}) => ({base: rec.base, path: str(rec.path, a + 8), buildId: str(rec.build_id, a + 12)})),
    segments: segs.map(({at: a, rec}) => {
      const role = roleName.get(rec.role)
      if (!role) throw manifestError('parse', 'MANIFEST_BAD_SEGMENT', `segment role ${rec.role} unknown`, base + a, rec.role)
      if (rec.address + rec.mem_size > 1n << 64n || rec.file_offset + rec.file_size > 1n << 64n || rec.file_size > rec.mem_size) {
        throw manifestError('parse', 'MANIFEST_BAD_SEGMENT', 'segment sizes overflow or file_size > mem_size', base + a, rec.mem_size)
      }
      const seg: ManifestSegment = {role, address: rec.address, memSize: rec.mem_size, fileOffset: rec.file_offset, fileSize: rec.file_size}
      const tracking = trackingName.get(rec.tracking)
      if (rec.tracking !== 0 && !tracking) throw manifestError('parse', 'MANIFEST_BAD_SEGMENT', `segment tracking ${rec.tracking} unknown`, base + a + 4, rec.tracking)
      if (tracking) { seg.tracking = tracking; seg.pagesWritten = rec.pages_written }
      return seg
    }),
    payloads: pays.map(({at: a, rec}) => {
      const source = sourceName.get(rec.source)
      if (!source) throw manifestError('parse', 'MANIFEST_BAD_PAYLOAD', `payload source ${rec.source} unknown`, base + a + 20, rec.source)
      if (rec.file_offset + rec.length > 1n << 64n) throw manifestError('parse', 'MANIFEST_BAD_PAYLOAD', 'payload range overflows', base + a, rec.length)
      return {fileOffset: rec.file_offset, length: rec.length, crc32c: rec.crc32c, source}
    }),
    undo: undos.map(({at: a, rec}) => {
      if (rec.blob_offset + rec.length > blob.length) {
        throw manifestError('parse', 'MANIFEST_BAD_UNDO', `undo bytes [${rec.blob_offset}, +${rec.length}) outside the blob`, base + a, rec.blob_offset)
      }
      if (rec.file_offset + BigInt(rec.length) > h.original_size) {
        throw manifestError('parse', 'MANIFEST_BAD_UNDO', 'undo record beyond original_size', base + a, rec.file_offset)
      }
      return {fileOffset: rec.file_offset, original: Uint8Array.from(blob.subarray(rec.blob_offset, rec.blob_offset + rec.length))}
    }),
  }
}
