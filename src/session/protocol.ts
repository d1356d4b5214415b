/**
 * The save protocol v1 (docs/protocol.md): typed messages, their JSON encoding and a
 * validating decoder. 64-bit fields travel as `0x` hex strings and are bigints here; small
 * counts are JSON numbers. Unknown keys are ignored, an unknown `t` is an error.
 * Framing (one JSON object per line, ≤ 1 MiB) is in line-reader.ts.
 */
import type {LibraryFact, PlannedWrite, PreviousImage, SaveMode, SaveRequest, TrackingMethod, WrittenFacts} from '../image/save-types.js'
import {ImgdumpError} from '../errors.js'
import {hex} from '../binary/hex.js'

export const PROTOCOL_VERSION = 1
/** Longest accepted line, newline excluded (docs/protocol.md, Transport). */
export const MAX_LINE = 1 << 20

export interface Hello {t: 'hello'; v: number; pid: number; exe: string; api: number}
export interface Welcome {t: 'welcome'; v: number}
export interface SaveMessage extends SaveRequest {t: 'save'}
/** `flush`: start writeback while writing (the planner will fsync); absent means false. */
export interface Plan {t: 'plan'; id: number; writes: PlannedWrite[]; headerCopy: bigint; flush: boolean}
export interface Written extends WrittenFacts {t: 'written'; id: number; crc32c: number[]; bytes: bigint}
export interface Failed {t: 'failed'; id: number; errno: number; message: string}
/** The runtime could not start a requested save (threads, busy, hook cancelled…). */
export interface Refused {t: 'refused'; id: number; code: number; message: string}
export interface Done {t: 'done'; id: number; path: string; bytes: bigint; pages: number; ms: number}
export interface ErrorMessage {t: 'error'; id?: number; code: string; message: string}
export interface RequestSave {t: 'request-save'; id: number; path: string; mode: SaveMode}

export type RuntimeMessage = Hello | SaveMessage | Written | Failed | Refused
export type PlannerMessage = Welcome | Plan | Done | ErrorMessage | RequestSave
export type Message = RuntimeMessage | PlannerMessage

/** The `error` code that tells the runtime to return IMGDUMP_ECANCELED. */
export const CANCELLED = 'CANCELLED'

function protoError(code: string, message: string, value?: string | number): ImgdumpError {
  return new ImgdumpError('session', code, message, value === undefined ? {} : {value})
}

// ---- encoding ----


/** JSON of one message, without the newline. bigints become lower-case 0x hex. */
export function encodeMessage(m: Message): string {
  // `generation` is a bigint in SaveRequest but a small count (JSON number) on the wire.
  const wire = m.t === 'save'
    ? {...m, generation: Number(m.generation), previous: m.previous && {...m.previous, generation: Number(m.previous.generation)}}
    : m
  return JSON.stringify(wire, (_k, v) => typeof v === 'bigint' ? hex(v) : v)
}

/** The framed bytes of one message (JSON + '\n'); refuses lines over MAX_LINE. */
export function frameMessage(m: Message): Buffer {
  const line = encodeMessage(m)
  const buf = Buffer.from(line + '\n', 'utf8')
  if (buf.length - 1 > MAX_LINE) throw protoError('PROTO_LINE_TOO_LONG', `message ${m.t} is ${buf.length - 1} bytes, over the 1 MiB line limit`)
  return buf
}

// ---- decoding: field readers that name the message and field in their errors ----

type Obj = Record<string, unknown>
const U64_MAX = (1n << 64n) - 1n

class Fields {
  constructor(readonly o: Obj, readonly where: string) {}

  private bad(key: string, want: string): never {
    const got = this.o[key]
    throw protoError('PROTO_BAD_FIELD', `${this.where}: field "${key}" must be ${want}, got ${JSON.stringify(got) ?? 'nothing'}`,
      key)
  }

  str(key: string): string {
    const v = this.o[key]
    if (typeof v !== 'string') this.bad(key, 'a string')
    return v
  }

  strOrNull(key: string): string | null {
    const v = this.o[key]
    if (v === null || v === undefined) return null
    return this.str(key)
  }

  /** A non-negative safe integer. */
  int(key: string): number {
    const v = this.o[key]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) this.bad(key, 'a non-negative integer')
    return v
  }

  num(key: string): number {
    const v = this.o[key]
    if (typeof v !== 'number' || !Number.isFinite(v)) this.bad(key, 'a number')
    return v
  }

  bool(key: string): boolean {
    const v = this.o[key]
    if (typeof v !== 'boolean') this.bad(key, 'true or false')
    return v
  }

  /** A field added after version 1 was published: absent is undefined. */
  has(key: string): boolean {
    return this.o[key] !== undefined && this.o[key] !== null
  }

  /** A boolean added after version 1 was published: absent reads as false. */
  optionalBool(key: string): boolean {
    return this.o[key] === undefined ? false : this.bool(key)
  }

  /** A 64-bit unsigned value as a 0x hex string. */
  u64(key: string): bigint {
    const v = this.o[key]
    if (typeof v !== 'string' || !/^0x[0-9a-fA-F]{1,16}$/.test(v)) this.bad(key, 'a 0x-hex string of at most 64 bits')
    return BigInt(v)
  }

  absPath(key: string): string {
    const v = this.str(key)
    if (!v.startsWith('/') || v.includes('\0')) this.bad(key, 'an absolute path')
    return v
  }

  obj(key: string): Fields {
    const v = this.o[key]
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.bad(key, 'an object')
    return new Fields(v as Obj, `${this.where}.${key}`)
  }

  list(key: string): unknown[] {
    const v = this.o[key]
    if (!Array.isArray(v)) this.bad(key, 'an array')
    return v
  }

  objects(key: string): Fields[] {
    return this.list(key).map((e, i) => {
      if (typeof e !== 'object' || e === null || Array.isArray(e)) this.bad(key, 'an array of objects')
      return new Fields(e as Obj, `${this.where}.${key}[${i}]`)
    })
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.str(key)
    if (!values.includes(v as T)) this.bad(key, `one of ${values.join('|')}`)
    return v as T
  }
}

const MODES = ['continue', 'exec', 'exit'] as const

function decodeSave(f: Fields): SaveMessage {
  const heap = f.obj('heap')
  const pinning = f.obj('pinning')
  const generation = BigInt(f.int('generation'))
  const req: SaveMessage = {
    t: 'save',
    id: f.int('id'),
    path: f.absPath('path'),
    mode: f.oneOf('mode', MODES),
    generation,
    exe: f.absPath('exe'),
    loadBias: f.u64('loadBias'),
    phdr: f.u64('phdr'),
    heap: {base: heap.u64('base'), brk: heap.u64('brk'), reserve: heap.u64('reserve'), header: heap.u64('header')},
    regions: f.objects('regions').map((r) => ({addr: r.u64('addr'), size: r.u64('size')})),
    libraries: f.objects('libraries').map((l): LibraryFact => {
      const buildId = l.strOrNull('buildId')
      if (buildId !== null && !/^[0-9a-f]*$/.test(buildId)) {
        throw protoError('PROTO_BAD_FIELD', `${l.where}: buildId must be lower-case hex, got ${JSON.stringify(buildId)}`, buildId)
      }
      return {path: l.str('path'), base: l.u64('base'), buildId: buildId === '' ? null : buildId}
    }),
    pinning: {
      noRandomize: pinning.bool('noRandomize'),
      stack: pinning.oneOf('stack', ['finite', 'unlimited'] as const),
      stackLimit: pinning.u64('stackLimit'),
    },
    origin: f.strOrNull('origin'),
  }
  // Added within version 1: absent from older runtimes.
  if (f.has('pid')) req.pid = f.int('pid')
  if (f.has('tracking')) {
    const t = f.obj('tracking')
    req.tracking = {method: t.oneOf('method', TRACKING)}
    if (t.has('why')) req.tracking.why = t.str('why')
  }
  if (f.has('previous')) req.previous = decodePrevious(f.obj('previous'))
  checkSaveRanges(req)
  return req
}

const TRACKING = ['none', 'pagemap', 'uffd'] as const satisfies readonly TrackingMethod[]

function decodePrevious(p: Fields): PreviousImage {
  return {source: p.oneOf('source', ['exe', 'fd'] as const), fd: p.int('fd'), generation: BigInt(p.int('generation'))}
}

/** The `written` additions of incremental saves (protocol v1 additions; all optional). */
function decodeWritten(f: Fields): Written {
  const w: Written = {t: 'written', id: f.int('id'), crc32c: decodeCrcs(f), bytes: f.u64('bytes')}
  if (f.has('tracking')) w.tracking = f.oneOf('tracking', TRACKING)
  if (f.has('fromPrevious')) {
    w.fromPrevious = f.list('fromPrevious').map((n, i) => {
      if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
        throw protoError('PROTO_BAD_FIELD', `written: fromPrevious[${i}] must be a non-negative integer, got ${JSON.stringify(n)}`)
      }
      return n
    })
  }
  if (f.has('reflinked')) w.reflinked = f.int('reflinked')
  if (f.has('copied')) w.copied = f.int('copied')
  if (f.has('holes')) w.holes = f.int('holes')
  return w
}

/** Facts that must hold for any plan to make sense: brk inside the reservation, no wrap. */
function checkSaveRanges(req: SaveRequest): void {
  const {base, brk, reserve, header} = req.heap
  if (brk < base || brk - base > reserve || base + reserve > U64_MAX) {
    throw protoError('PROTO_BAD_FIELD', `save: heap break ${hex(brk)} is outside [${hex(base)}, ${hex(base)}+${hex(reserve)}]`, hex(brk))
  }
  if (header < base || header >= base + (reserve === 0n ? 1n : reserve)) {
    throw protoError('PROTO_BAD_FIELD', `save: heap header ${hex(header)} is outside the heap reservation`, hex(header))
  }
  for (const r of req.regions) {
    if (r.addr + r.size > U64_MAX) throw protoError('PROTO_BAD_FIELD', `save: region ${hex(r.addr)}+${hex(r.size)} wraps`, hex(r.addr))
  }
}

function decodeWrites(f: Fields): PlannedWrite[] {
  return f.objects('writes').map((w) => {
    const out: PlannedWrite = {addr: w.u64('addr'), size: w.u64('size'), offset: w.u64('offset')}
    if (w.has('prev')) { out.prev = w.u64('prev'); out.prevLen = w.u64('prevLen') }
    return out
  })
}

function decodeCrcs(f: Fields): number[] {
  return f.list('crc32c').map((c, i) => {
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > 0xffffffff) {
      throw protoError('PROTO_BAD_FIELD', `written: crc32c[${i}] must be a 32-bit unsigned integer, got ${JSON.stringify(c)}`)
    }
    return c
  })
}

const DECODERS: Record<Message['t'], (f: Fields) => Message> = {
  hello: (f) => ({t: 'hello', v: f.int('v'), pid: f.int('pid'), exe: f.str('exe'), api: f.int('api')}),
  welcome: (f) => ({t: 'welcome', v: f.int('v')}),
  save: decodeSave,
  plan: (f) => ({t: 'plan', id: f.int('id'), writes: decodeWrites(f), headerCopy: f.u64('headerCopy'),
    flush: f.optionalBool('flush')}),
  written: decodeWritten,
  failed: (f) => ({t: 'failed', id: f.int('id'), errno: f.int('errno'), message: f.str('message')}),
  refused: (f) => ({t: 'refused', id: f.int('id'), code: f.num('code'), message: f.str('message')}),
  done: (f) => ({t: 'done', id: f.int('id'), path: f.str('path'), bytes: f.u64('bytes'), pages: f.int('pages'), ms: f.num('ms')}),
  error: (f) => {
    const m: ErrorMessage = {t: 'error', code: f.str('code'), message: f.str('message')}
    if (f.o.id !== undefined && f.o.id !== null) m.id = f.int('id')
    return m
  },
  'request-save': (f) => ({t: 'request-save', id: f.int('id'), path: f.absPath('path'), mode: f.oneOf('mode', MODES)}),
}

/** Parse and validate one line (without its newline) into a typed message. */
export function decodeMessage(line: string): Message {
  if (line.length > MAX_LINE) throw protoError('PROTO_LINE_TOO_LONG', `a protocol line is over the 1 MiB limit`)
  let o: unknown
  try {
    o = JSON.parse(line)
  } catch (err) {
    throw protoError('PROTO_BAD_JSON', `not a JSON line: ${line.slice(0, 80)}`, line.slice(0, 80))
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw protoError('PROTO_BAD_JSON', `a protocol line must be a JSON object`)
  const t = (o as Obj).t
  if (typeof t !== 'string' || !Object.hasOwn(DECODERS, t)) {
    throw protoError('PROTO_UNKNOWN_TYPE', `unknown message type ${JSON.stringify(t)}`, String(t))
  }
  return DECODERS[t as Message['t']](new Fields(o as Obj, t))
}

/** Decode and require one of the given types (e.g. a planner expects runtime messages). */
export function decodeAs<T extends Message['t']>(line: string, types: readonly T[]): Extract<Message, {t: T}> {
  const m = decodeMessage(line)
  if (!types.includes(m.t as T)) {
    throw protoError('PROTO_UNEXPECTED', `unexpected message "${m.t}" (expected ${types.join(' or ')})`, m.t)
  }
  return m as Extract<Message, {t: T}>
}
