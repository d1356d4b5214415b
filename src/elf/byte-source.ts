/**
 * Bounds-checked random access to the bytes of a file, so that files of many GiB (images)
 * are read piece by piece and never loaded whole. A read outside the file is ELF_TRUNCATED.
 */
import fs from 'node:fs'
import {parseError} from './errors.js'

/** A way to read `length` bytes at `offset` (throws rather than returning fewer). */
export interface ByteReader {
  read(offset: bigint, length: number): Uint8Array
  /**
   * The same into the start of `into` (length ≤ its size), for callers that stream GiBs
   * through one buffer; returns the bytes read as a view of `into`.
   */
  readInto?(offset: bigint, length: number, into: Buffer): Uint8Array
}

/** A ByteReader over a file of known size. */
export interface ByteSource extends ByteReader {
  readonly size: bigint
}

/** The bytes of `buf` (reads are views into it, not copies). */
export function bufferSource(buf: Uint8Array): ByteSource {
  return {
    size: BigInt(buf.length),
    read(offset, length) {
      if (offset < 0n || offset + BigInt(length) > BigInt(buf.length)) {
        throw parseError('ELF_TRUNCATED', `read of ${length} bytes at ${offset} past the end of the file (${buf.length} bytes)`, offset, length)
      }
      return buf.subarray(Number(offset), Number(offset) + length)
    },
  }
}

/** The file open on `fd`, read with pread on demand; its size is taken once, here. */
export function fdSource(fd: number): ByteSource {
  const size = BigInt(fs.fstatSync(fd).size)
  // Checked before anything is allocated: lengths come from fields of the file.
  const check = (offset: bigint, length: number) => {
    if (offset < 0n || offset + BigInt(length) > size) {
      throw parseError('ELF_TRUNCATED', `read of ${length} bytes at ${offset} past the end of the file (${size} bytes)`, offset, length)
    }
  }
  const readInto = (offset: bigint, length: number, into: Buffer): Uint8Array => {
    check(offset, length)
    let done = 0
    while (done < length) {
      const n = fs.readSync(fd, into, done, length - done, Number(offset) + done)
      if (n === 0) throw parseError('ELF_TRUNCATED', 'file shrank while reading', offset + BigInt(done))
      done += n
    }
    return into.subarray(0, length)
  }
  // Every byte is read or the read throws: no need to zero a fresh buffer first.
  return {size, readInto, read: (offset, length) => (check(offset, length), readInto(offset, length, Buffer.allocUnsafe(length)))}
}
