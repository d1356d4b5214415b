/**
 * Patches over the original executable's bytes, each remembered so the manifest's undo log
 * can give the original back byte for byte. Undo records always hold bytes of the pristine
 * original, so overlapping patches are safe; records are merged into maximal runs.
 */
import {ImgdumpError} from '../errors.js'
import {normalize, type Range} from './address-ranges.js'
import type {ManifestUndo} from './manifest.js'

export class OriginalPatcher {
  readonly patched: Buffer
  private touched: Range[] = []
  readonly log: {offset: bigint; length: number; what: string}[] = []

  constructor(readonly original: Buffer) {
    this.patched = Buffer.from(original)
  }

  patch(offset: bigint, bytes: Uint8Array, what: string): void {
    const end = offset + BigInt(bytes.length)
    if (offset < 0n || end > BigInt(this.original.length)) {
      throw new ImgdumpError('internal', 'PATCH_OUTSIDE_ORIGINAL', `patch "${what}" at ${offset} outside the original file`, {offset})
    }
    this.patched.set(bytes, Number(offset))
    this.touched.push({start: offset, end})
    this.log.push({offset, length: bytes.length, what})
  }

  patchU64(offset: bigint, value: bigint, what: string): void {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(value)
    this.patch(offset, b, what)
  }

  patchU32(offset: bigint, value: number, what: string): void {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(value >>> 0)
    this.patch(offset, b, what)
  }

  patchU16(offset: bigint, value: number, what: string): void {
    const b = Buffer.alloc(2)
    b.writeUInt16LE(value)
    this.patch(offset, b, what)
  }

  /** Undo records: maximal runs of patched bytes that differ from the original. */
  undo(): ManifestUndo[] {
    const out: ManifestUndo[] = []
    for (const r of normalize(this.touched)) {
      let i = Number(r.start)
      const end = Number(r.end)
      while (i < end) {
        while (i < end && this.patched[i] === this.original[i]) i++
        const start = i
        while (i < end && this.patched[i] !== this.original[i]) i++
        if (i > start) out.push({fileOffset: BigInt(start), original: Uint8Array.from(this.original.subarray(start, i))})
      }
    }
    return out
  }
}
