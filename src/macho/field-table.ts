/**
 * On-disk structures declared once as field tables (DESIGN §9 rule 1); the reader and the
 * writer of every structure are derived from its table. Mach-O itself is little-endian on
 * both targets; the fat header and code signatures are big-endian, hence the endian flag.
 */
import {truncated} from './errors.js'

export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 'name16' | 'bytes16'
export interface Field {readonly name: string; readonly kind: FieldKind; readonly doc: string}
export type Endian = 'le' | 'be'

type KindValue<K> = K extends 'u64' ? bigint : K extends 'name16' ? string : K extends 'bytes16' ? Buffer : number
export type StructOf<F extends readonly Field[]> = {-readonly [E in F[number] as E['name']]: KindValue<E['kind']>}

const WIDTH: Record<FieldKind, number> = {u8: 1, u16: 2, u32: 4, u64: 8, name16: 16, bytes16: 16}

export interface Struct<F extends readonly Field[]> {
  readonly name: string
  readonly fields: F
  readonly size: number
  read(buf: Buffer, offset: number, endian?: Endian): StructOf<F>
  write(value: StructOf<F>, buf: Buffer, offset: number, endian?: Endian): void
  encode(value: StructOf<F>, endian?: Endian): Buffer
  offsetOf(field: F[number]['name']): number
}

export function defineStruct<const F extends readonly Field[]>(name: string, fields: F, defaultEndian: Endian = 'le'): Struct<F> {
  const offsets: number[] = []
  let size = 0
  for (const f of fields) { offsets.push(size); size += WIDTH[f.kind] }
  const read = (buf: Buffer, offset: number, endian: Endian = defaultEndian): StructOf<F> => {
    if (offset < 0 || offset + size > buf.length) throw truncated(name, offset, size, Math.max(0, buf.length - offset))
    const out: Record<string, unknown> = {}
    fields.forEach((f, i) => { out[f.name] = readField(buf, offset + offsets[i], f.kind, endian) })
    return out as StructOf<F>
  }
  const write = (value: StructOf<F>, buf: Buffer, offset: number, endian: Endian = defaultEndian): void => {
    if (offset < 0 || offset + size > buf.length) throw new RangeError(`${name}: write at ${offset} outside buffer of ${buf.length}`)
    const v = value as Record<string, unknown>
    fields.forEach((f, i) => writeField(buf, offset + offsets[i], f, v[f.name], endian))
  }
  return {
    name, fields, size, read, write,
    encode(value, endian = defaultEndian) { const b = Buffer.alloc(size); write(value, b, 0, endian); return b },
    offsetOf(field) { const i = fields.findIndex(f => f.name === field); if (i < 0) throw new Error(`${name} has no ${field}`); return offsets[i] },
  }
}

function readField(buf: Buffer, at: number, kind: FieldKind, e: Endian): unknown {
  switch (kind) {
    case 'u8': return buf.readUInt8(at)
    case 'u16': return e === 'le' ? buf.readUInt16LE(at) : buf.readUInt16BE(at)
    case 'u32': return e === 'le' ? buf.readUInt32LE(at) : buf.readUInt32BE(at)
    case 'u64': return e === 'le' ? buf.readBigUInt64LE(at) : buf.readBigUInt64BE(at)
    case 'name16': { const raw = buf.subarray(at, at + 16); const nul = raw.indexOf(0); return raw.subarray(0, nul < 0 ? 16 : nul).toString('latin1') }
    case 'bytes16': return Buffer.from(buf.subarray(at, at + 16))
  }
}

function writeField(buf: Buffer, at: number, f: Field, v: unknown, e: Endian): void {
  const bad = () => new RangeError(`field ${f.name}: bad value ${String(v)}`)
  switch (f.kind) {
    case 'u8': if (typeof v !== 'number') throw bad(); buf.writeUInt8(v, at); return
    case 'u16': if (typeof v !== 'number') throw bad(); e === 'le' ? buf.writeUInt16LE(v, at) : buf.writeUInt16BE(v, at); return
    case 'u32': if (typeof v !== 'number') throw bad(); e === 'le' ? buf.writeUInt32LE(v >>> 0, at) : buf.writeUInt32BE(v >>> 0, at); return
    case 'u64': if (typeof v !== 'bigint') throw bad(); e === 'le' ? buf.writeBigUInt64LE(v, at) : buf.writeBigUInt64BE(v, at); return
    case 'name16': {
      if (typeof v !== 'string' || Buffer.byteLength(v, 'latin1') > 16) throw bad()
      buf.fill(0, at, at + 16); buf.write(v, at, 'latin1'); return
    }
    case 'bytes16': if (!Buffer.isBuffer(v) || v.length !== 16) throw bad(); v.copy(buf, at); return
  }
}

/** Bounds-checked slice: the typed error names what was being read. */
export function sliceChecked(buf: Buffer, offset: number | bigint, length: number | bigint, what: string): Buffer {
  const off = BigInt(offset), len = BigInt(length)
  if (off < 0n || len < 0n || off + len > BigInt(buf.length)) throw truncated(what, off, len, off > BigInt(buf.length) ? 0n : BigInt(buf.length) - off)
  return buf.subarray(Number(off), Number(off + len))
}

export const alignUp = (v: bigint, a: bigint): bigint => (v + a - 1n) / a * a
export const alignUpN = (v: number, a: number): number => Math.ceil(v / a) * a
