import {truncated} from './errors.js'

/** Bounds-checked slice: the typed error names what was being read. */
export function sliceChecked(buf: Buffer, offset: number | bigint, length: number | bigint, what: string): Buffer {
  const off = BigInt(offset), len = BigInt(length)
  if (off < 0n || len < 0n || off + len > BigInt(buf.length)) throw truncated(what, off, len, off > BigInt(buf.length) ? 0n : BigInt(buf.length) - off)
  return buf.subarray(Number(off), Number(off + len))
}
