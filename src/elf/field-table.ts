/**
 * On-disk structures as data (DESIGN §9 rule 1): a structure is a list of fields with a
 * width and a doc line; the reader and the writer below are derived from that list, so a
 * structure is declared exactly once. 8-byte fields are bigint, narrower ones number,
 * `bytes` fields Uint8Array. Little-endian only (the reader refuses big-endian files).
 */
export interface FieldDef {
  readonly name: string
  readonly width: number
  readonly doc: string
  readonly bytes?: true
}

export interface StructDef<F extends readonly FieldDef[] = readonly FieldDef[]> {
  readonly name: string
  readonly size: number
  readonly fields: F
}

type FieldValue<D extends FieldDef> = D extends {bytes: true} ? Uint8Array : D['width'] extends 8 ? bigint : number

/** The record type of a structure: field name → value. */
export type StructValue<S extends StructDef> = {-readonly [D in S['fields'][number] as D['name']]: FieldValue<D>}

export function defineStruct<const F extends readonly FieldDef[]>(name: string, fields: F): StructDef<F> {
  let size = 0
  for (const f of fields) size += f.width
  return {name, size, fields}
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

/** Decode one structure at `offset` of `buf`; the caller has checked `offset + size <= length`. */
export function decodeStruct<S extends StructDef>(def: S, buf: Uint8Array, offset: number): StructValue<S> {
  const view = viewOf(buf)
  const out: Record<string, unknown> = {}
  let at = offset
  for (const f of def.fields) {
    if (f.bytes) out[f.name] = buf.slice(at, at + f.width)
    else if (f.width === 8) out[f.name] = view.getBigUint64(at, true)
    else if (f.width === 4) out[f.name] = view.getUint32(at, true)
    else if (f.width === 2) out[f.name] = view.getUint16(at, true)
    else out[f.name] = view.getUint8(at)
    at += f.width
  }
  return out as StructValue<S>
}

/** Encode one structure into `buf` at `offset`. Values out of range are a bug, not input. */
export function encodeStruct<S extends StructDef>(def: S, value: StructValue<S>, buf: Uint8Array, offset: number): void {
  const view = viewOf(buf)
  const rec = value as Record<string, unknown>
  let at = offset
  for (const f of def.fields) {
    const v = rec[f.name]
    if (f.bytes) {
      const b = v as Uint8Array
      if (b.length !== f.width) throw new Error(`${def.name}.${f.name}: ${b.length} bytes, want ${f.width}`)
      buf.set(b, at)
    } else if (f.width === 8) view.setBigUint64(at, v as bigint, true)
    else if (f.width === 4) view.setUint32(at, v as number, true)
    else if (f.width === 2) view.setUint16(at, v as number, true)
    else view.setUint8(at, v as number)
    at += f.width
  }
}

export function encodeStructs<S extends StructDef>(def: S, values: readonly StructValue<S>[]): Uint8Array {
  const out = new Uint8Array(def.size * values.length)
  values.forEach((v, i) => encodeStruct(def, v, out, i * def.size))
  return out
}

/** A set of named constants declared once; `nameOf` gives the symbolic name for display. */
export interface ConstantSet {
  readonly byValue: ReadonlyMap<bigint, string>
  nameOf(value: number | bigint): string | undefined
}

export function defineConstants(values: Readonly<Record<string, number | bigint>>): ConstantSet {
  const byValue = new Map<bigint, string>()
  for (const [name, v] of Object.entries(values)) if (!byValue.has(BigInt(v))) byValue.set(BigInt(v), name)
  return {byValue, nameOf: (v) => byValue.get(BigInt(v))}
}
