/**
 * On-disk structures as data (DESIGN §9 rule 1): a structure is a list of fields, each with
 * a width in bytes and a doc line; the decoder and the encoder below are derived from that
 * list, so a structure is declared exactly once. Used by every format (ELF, Mach-O, the heap
 * header, the manifest).
 *
 * Field values: unsigned integers of 1, 2 or 4 bytes are number, of 8 bytes bigint;
 * `kind: 'bytes'` fields are Uint8Array (a copy), `kind: 'name'` fields a NUL-padded latin1
 * string. Byte order is per structure ('le' unless defined otherwise; the Mach-O fat header
 * and code signature are big-endian), and may be overridden per call.
 *
 * Reads are bounds-checked: a structure that does not fit throws the error the format asked
 * for at definition time (ElfError ELF_TRUNCATED, MachoError MACHO_TRUNCATED, …), else a
 * RangeError. Writes of values out of range or of the wrong type are bugs: RangeError.
 */
export type Endian = 'le' | 'be'

export interface FieldDef {
  readonly name: string
  /** Bytes: 1, 2, 4 or 8 for integers; any positive width for bytes and names. */
  readonly width: number
  readonly doc: string
  readonly kind?: 'bytes' | 'name'
}

/** Builds the format's typed error for a structure that runs past the end of its buffer. */
export type TruncatedError = (what: string, offset: number, need: number, have: number) => Error

export interface StructOptions {
  readonly endian?: Endian
  readonly truncated?: TruncatedError
}

const U8 = 0, U16 = 1, U32 = 2, U64 = 3, BYTES = 4, NAME = 5
interface Slot {readonly name: string; readonly at: number; readonly width: number; readonly code: number}

export interface StructDef<F extends readonly FieldDef[] = readonly FieldDef[]> {
  readonly name: string
  readonly size: number
  readonly fields: F
  readonly endian: Endian
  /** Precomputed layout: the decoder walks this instead of re-deriving offsets per call. */
  readonly slots: readonly Slot[]
  readonly truncated: TruncatedError
}

type FieldValue<D extends FieldDef> =
  D extends {kind: 'bytes'} ? Uint8Array : D extends {kind: 'name'} ? string : D['width'] extends 8 ? bigint : number

/** The record type of a structure: field name → value. */
export type StructValue<S extends StructDef> = {-readonly [D in S['fields'][number] as D['name']]: FieldValue<D>}

const rangeTruncated: TruncatedError = (what, offset, need, have) =>
  new RangeError(`${what} at offset ${offset} needs ${need} bytes, only ${have} available`)

const UINT_CODE: Record<number, number> = {1: U8, 2: U16, 4: U32, 8: U64}

export function defineStruct<const F extends readonly FieldDef[]>(name: string, fields: F, options: StructOptions = {}): StructDef<F> {
  const slots: Slot[] = []
  let size = 0
  for (const f of fields) {
    const code = f.kind === 'bytes' ? BYTES : f.kind === 'name' ? NAME : UINT_CODE[f.width]
    if (code === undefined || !(f.width > 0)) throw new Error(`${name}.${f.name}: no integer field of width ${f.width}`)
    slots.push({name: f.name, at: size, width: f.width, code})
    size += f.width
  }
  return {name, size, fields, endian: options.endian ?? 'le', slots, truncated: options.truncated ?? rangeTruncated}
}

export function offsetOf<S extends StructDef>(def: S, field: S['fields'][number]['name']): number {
  const slot = def.slots.find((s) => s.name === field)
  if (!slot) throw new Error(`${def.name} has no field ${field}`)
  return slot.at
}

// Tables are decoded entry by entry from the same buffer: reuse its DataView (a symbol table
// of 185k entries otherwise spends most of its time creating views).
let lastBuf: Uint8Array | undefined
let lastView: DataView | undefined

function viewOf(buf: Uint8Array): DataView {
  if (buf !== lastBuf || !lastView) {
    lastBuf = buf
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }
  return lastView
}

/** Decode one structure at `offset` of `buf`; throws the structure's truncation error if it does not fit. */
export function decodeStruct<S extends StructDef>(def: S, buf: Uint8Array, offset: number, endian: Endian = def.endian): StructValue<S> {
  if (!(offset >= 0 && offset + def.size <= buf.length)) throw def.truncated(def.name, offset, def.size, Math.max(0, buf.length - offset))
  const view = viewOf(buf)
  const le = endian === 'le'
  const out: Record<string, unknown> = {}
  for (const s of def.slots) {
    const at = offset + s.at
    switch (s.code) {
      case U8: out[s.name] = view.getUint8(at); break
      case U16: out[s.name] = view.getUint16(at, le); break
      case U32: out[s.name] = view.getUint32(at, le); break
      case U64: out[s.name] = view.getBigUint64(at, le); break
      // Uint8Array's slice copies and keeps the class: a Buffer input gives a Buffer.
      case BYTES: out[s.name] = Uint8Array.prototype.slice.call(buf, at, at + s.width); break
      default: out[s.name] = latin1UntilNul(buf, at, s.width)
    }
  }
  return out as StructValue<S>
}

function latin1UntilNul(buf: Uint8Array, at: number, width: number): string {
  let text = ''
  for (let i = at; i < at + width && buf[i] !== 0; i++) text += String.fromCharCode(buf[i])
  return text
}

/** Encode one structure into `buf` at `offset`. Values out of range are a bug, not input. */
export function encodeStruct<S extends StructDef>(def: S, value: StructValue<S>, buf: Uint8Array, offset: number, endian: Endian = def.endian): void {
  if (!(offset >= 0 && offset + def.size <= buf.length)) throw new RangeError(`${def.name}: write at ${offset} outside buffer of ${buf.length}`)
  const view = viewOf(buf)
  const le = endian === 'le'
  const rec = value as Record<string, unknown>
  for (const s of def.slots) {
    const v = rec[s.name], at = offset + s.at
    switch (s.code) {
      case U8: if (!isUint(v, 0xff)) throw badValue(def, s, v); view.setUint8(at, v); break
      case U16: if (!isUint(v, 0xffff)) throw badValue(def, s, v); view.setUint16(at, v, le); break
      // 32-bit fields wrap (ToUint32), as both former encoders did (ELF's DataView, Mach-O's `>>> 0`).
      case U32: if (typeof v !== 'number') throw badValue(def, s, v); view.setUint32(at, v, le); break
      case U64: if (typeof v !== 'bigint' || v < 0n || v > 0xffff_ffff_ffff_ffffn) throw badValue(def, s, v); view.setBigUint64(at, v, le); break
      case BYTES: if (!(v instanceof Uint8Array) || v.length !== s.width) throw badValue(def, s, v); buf.set(v, at); break
      default: {
        if (typeof v !== 'string' || v.length > s.width) throw badValue(def, s, v)
        for (let i = 0; i < s.width; i++) buf[at + i] = i < v.length ? v.charCodeAt(i) & 0xff : 0
      }
    }
  }
}

// A function, not a closure made per field: this loop runs for every field of every entry of
// a 185k-symbol table (and tsx wraps each closure in a naming helper).
function badValue(def: StructDef, s: Slot, v: unknown): RangeError {
  return new RangeError(`${def.name}.${s.name}: bad value ${String(v)} for a ${s.width}-byte field`)
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max
}

/** Encode a table of structures back to back into a new buffer. */
export function encodeStructs<S extends StructDef>(def: S, values: readonly StructValue<S>[]): Uint8Array {
  const out = new Uint8Array(def.size * values.length)
  values.forEach((v, i) => encodeStruct(def, v, out, i * def.size))
  return out
}
