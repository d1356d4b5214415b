/**
 * Classic dyld info opcode streams (<mach-o/loader.h> REBASE_OPCODE_* and BIND_OPCODE_*):
 * decoded into one entry per fixed-up pointer and re-encoded plainly (one SET_SEGMENT /
 * ADD_ADDR + DO_* per entry). Used to drop the fixups that target pages saved from memory.
 * Lazy-bind streams are never re-encoded: __stub_helper code holds offsets into them.
 */
import {MachoError} from './errors.js'

export interface RebaseEntry {type: number; segment: number; offset: bigint}
export interface BindEntry {ordinal: number; symbol: string; flags: number; type: number; addend: bigint; segment: number; offset: bigint}

class Cursor {
  at = 0
  constructor(readonly b: Buffer, readonly what: string) {}
  done(): boolean { return this.at >= this.b.length }
  byte(): number { if (this.at >= this.b.length) throw this.err('truncated'); return this.b[this.at++] }
  uleb(): bigint {
    let v = 0n, shift = 0n
    for (;;) { const x = this.byte(); v |= BigInt(x & 0x7f) << shift; shift += 7n; if (!(x & 0x80)) return v; if (shift > 63n) throw this.err('ULEB128 too long') }
  }
  sleb(): bigint {
    let v = 0n, shift = 0n, x: number
    do { x = this.byte(); v |= BigInt(x & 0x7f) << shift; shift += 7n } while (x & 0x80 && shift < 70n)
    if (x & 0x40) v -= 1n << shift
    return BigInt.asIntN(64, v)
  }
  cstring(): string { const nul = this.b.indexOf(0, this.at); if (nul < 0) throw this.err('unterminated symbol name'); const s = this.b.subarray(this.at, nul).toString('utf8'); this.at = nul + 1; return s }
  err(why: string): MachoError { return new MachoError('parse', 'MACHO_BAD_OPCODES', `${this.what}: ${why} at byte ${this.at}`, {offset: this.at}) }
}

const u64 = (v: bigint): bigint => BigInt.asUintN(64, v)

export function decodeRebase(b: Buffer, pointerSize = 8n): RebaseEntry[] {
  const c = new Cursor(b, 'rebase opcodes'), out: RebaseEntry[] = []
  let type = 0, segment = 0, offset = 0n
  const emit = () => { out.push({type, segment, offset}); offset = u64(offset + pointerSize) }
  while (!c.done()) {
    const byte = c.byte(), op = byte & 0xf0, imm = byte & 0x0f
    switch (op) {
      case 0x00: return out
      case 0x10: type = imm; break
      case 0x20: segment = imm; offset = c.uleb(); break
      case 0x30: offset = u64(offset + c.uleb()); break
      case 0x40: offset = u64(offset + BigInt(imm) * pointerSize); break
      case 0x50: for (let i = 0; i < imm; i++) emit(); break
      case 0x60: { const n = c.uleb(); if (n > BigInt(b.length) * 1024n) throw c.err(`absurd count ${n}`); for (let i = 0n; i < n; i++) emit(); break }
      case 0x70: emit(); offset = u64(offset + c.uleb()); break
      case 0x80: {
        const n = c.uleb(), skip = c.uleb()
        if (n > BigInt(b.length) * 1024n) throw c.err(`absurd count ${n}`)
        for (let i = 0n; i < n; i++) { emit(); offset = u64(offset + skip) }
        break
      }
      default: throw c.err(`unknown rebase opcode 0x${byte.toString(16)}`)
    }
  }
  return out
}

/** Lazy-bind streams separate their entries with DONE; decode every entry. */
export function decodeLazyBind(b: Buffer, pointerSize = 8n): BindEntry[] {
  return decodeBind(b, pointerSize, true)
}

export function decodeBind(b: Buffer, pointerSize = 8n, lazy = false): BindEntry[] {
  const c = new Cursor(b, 'bind opcodes'), out: BindEntry[] = []
  let ordinal = 0, symbol = '', flags = 0, type = 1, addend = 0n, segment = 0, offset = 0n
  const emit = () => { out.push({ordinal, symbol, flags, type, addend, segment, offset}); offset = u64(offset + pointerSize) }
  while (!c.done()) {
    const byte = c.byte(), op = byte & 0xf0, imm = byte & 0x0f
    switch (op) {
      case 0x00: if (lazy) break; return out
      case 0x10: ordinal = imm; break
      case 0x20: ordinal = Number(c.uleb()); break
      case 0x30: ordinal = imm === 0 ? 0 : (imm | 0xf0) << 24 >> 24; break
      case 0x40: flags = imm; symbol = c.cstring(); break
      case 0x50: type = imm; break
      case 0x60: addend = c.sleb(); break
      case 0x70: segment = imm; offset = c.uleb(); break
      case 0x80: offset = u64(offset + c.uleb()); break
      case 0x90: emit(); break
      case 0xa0: emit(); offset = u64(offset + c.uleb()); break
      case 0xb0: emit(); offset = u64(offset + BigInt(imm) * pointerSize); break
      case 0xc0: {
        const n = c.uleb(), skip = c.uleb()
        if (n > BigInt(b.length) * 1024n) throw c.err(`absurd count ${n}`)
        for (let i = 0n; i < n; i++) { emit(); offset = u64(offset + skip) }
        break
      }
      default: throw c.err(`unsupported bind opcode 0x${byte.toString(16)}`)
    }
  }
  return out
}

function uleb(v: bigint): number[] {
  const out: number[] = []
  do { let x = Number(v & 0x7fn); v >>= 7n; if (v) x |= 0x80; out.push(x) } while (v)
  return out
}
function sleb(v: bigint): number[] {
  const out: number[] = []
  for (;;) {
    const x = Number(v & 0x7fn); v >>= 7n
    const done = (v === 0n && !(x & 0x40)) || (v === -1n && (x & 0x40) !== 0)
    out.push(done ? x : x | 0x80)
    if (done) return out
  }
}
/** Pad to the pointer size with DONE opcodes, as linkers do. */
const finish = (bytes: number[], pointerSize: number): Buffer => {
  bytes.push(0)
  while (bytes.length % pointerSize) bytes.push(0)
  return Buffer.from(bytes)
}

export function encodeRebase(entries: RebaseEntry[], pointerSize = 8): Buffer {
  const out: number[] = []
  let type = -1, segment = -1, offset = 0n
  for (const e of entries) {
    if (e.type !== type) { out.push(0x10 | e.type); type = e.type }
    if (e.segment !== segment || e.offset < offset) { out.push(0x20 | e.segment, ...uleb(e.offset)); segment = e.segment }
    else if (e.offset > offset) out.push(0x30, ...uleb(e.offset - offset))
    out.push(0x51)
    offset = e.offset + BigInt(pointerSize)
  }
  return finish(out, pointerSize)
}

export function encodeBind(entries: BindEntry[], pointerSize = 8): Buffer {
  const out: number[] = []
  let ordinal = NaN, symbol: string | null = null, flags = -1, type = -1, addend = 0n, segment = -1, offset = 0n
  for (const e of entries) {
    if (e.ordinal !== ordinal) {
      if (e.ordinal <= 0) out.push(0x30 | (e.ordinal & 0x0f))
      else if (e.ordinal < 16) out.push(0x10 | e.ordinal)
      else out.push(0x20, ...uleb(BigInt(e.ordinal)))
      ordinal = e.ordinal
    }
    if (e.symbol !== symbol || e.flags !== flags) { out.push(0x40 | e.flags, ...Buffer.from(e.symbol + '\0', 'utf8')); symbol = e.symbol; flags = e.flags }
    if (e.type !== type) { out.push(0x50 | e.type); type = e.type }
    if (e.addend !== addend) { out.push(0x60, ...sleb(e.addend)); addend = e.addend }
    if (e.segment !== segment || e.offset < offset) { out.push(0x70 | e.segment, ...uleb(e.offset)); segment = e.segment }
    else if (e.offset > offset) out.push(0x80, ...uleb(e.offset - offset))
    out.push(0x90)
    offset = e.offset + BigInt(pointerSize)
  }
  return finish(out, pointerSize)
}
