/** Fat (universal) files: a big-endian header and one slice per architecture. */
import {CPU_NAMES, FAT_MAGIC, FAT_MAGIC_64, FatArch, FatArch64, FatHeader} from './definitions.js'
import {MachoError} from './errors.js'
import {decodeStruct, encodeStruct} from '../binary/field-table.js'
import {sliceChecked} from './checked-slice.js'
import {isFat} from './read.js'

export interface FatSlice {cputype: number; cpusubtype: number; offset: bigint; size: bigint; align: number; reserved: number; bytes: Buffer}
export interface FatFile {magic: number; slices: FatSlice[]}

export function readFat(buf: Buffer): FatFile {
  if (!isFat(buf)) throw new MachoError('parse', 'MACHO_BAD_MAGIC', 'not a fat (universal) file', {offset: 0})
  const h = decodeStruct(FatHeader, buf, 0)
  const wide = h.magic === FAT_MAGIC_64
  const entry = wide ? FatArch64.size : FatArch.size
  if (8 + h.nfat_arch * entry > buf.length) {
    throw new MachoError('parse', 'MACHO_TRUNCATED', `fat header lists ${h.nfat_arch} slices that do not fit in ${buf.length} bytes`, {offset: 4, value: h.nfat_arch})
  }
  const slices: FatSlice[] = []
  for (let i = 0; i < h.nfat_arch; i++) {
    const at = 8 + i * entry
    const a = wide ? decodeStruct(FatArch64, buf, at) : {...decodeStruct(FatArch, buf, at), reserved: 0}
    const offset = BigInt(a.offset), size = BigInt(a.size)
    slices.push({cputype: a.cputype, cpusubtype: a.cpusubtype, offset, size, align: a.align, reserved: a.reserved,
      bytes: Buffer.from(sliceChecked(buf, offset, size, `fat slice ${i}`))})
  }
  return {magic: h.magic, slices}
}

export function archName(cputype: number): string { return CPU_NAMES[cputype] ?? `cpu 0x${cputype.toString(16)}` }

export function pickSlice(f: FatFile, arch: string | undefined): FatSlice {
  if (arch === undefined) {
    if (f.slices.length === 1) return f.slices[0]
    throw new MachoError('usage', 'MACHO_NO_ARCH', `fat file has slices ${f.slices.map(s => archName(s.cputype)).join(', ')}: pick one with --arch`)
  }
  const s = f.slices.find(x => archName(x.cputype) === arch)
  if (!s) throw new MachoError('usage', 'MACHO_NO_ARCH', `no ${arch} slice (have ${f.slices.map(x => archName(x.cputype)).join(', ')})`, {value: arch})
  return s
}

/** Serialise: header, arch table, each slice at its offset (gaps zero, as lipo leaves them). */
export function writeFat(f: FatFile): Buffer {
  const wide = f.magic === FAT_MAGIC_64
  if (!wide && f.magic !== FAT_MAGIC) throw new MachoError('write', 'MACHO_BAD_MAGIC', `bad fat magic 0x${f.magic.toString(16)}`)
  const tableEnd = 8n + BigInt(f.slices.length * (wide ? FatArch64.size : FatArch.size))
  let size = tableEnd
  const sorted = [...f.slices].sort((a, b) => (a.offset < b.offset ? -1 : 1))
  let prevEnd = tableEnd
  for (const s of sorted) {
    if (s.offset < prevEnd) throw new MachoError('write', 'MACHO_BAD_LAYOUT', `fat slice ${archName(s.cputype)} at ${s.offset} overlaps what precedes it`, {offset: s.offset})
    if (BigInt(s.bytes.length) !== s.size) throw new MachoError('write', 'MACHO_BAD_LAYOUT', `fat slice ${archName(s.cputype)} size ${s.size} but ${s.bytes.length} bytes`)
    prevEnd = s.offset + s.size
    if (prevEnd > size) size = prevEnd
  }
  const out = Buffer.alloc(Number(size))
  encodeStruct(FatHeader, {magic: f.magic, nfat_arch: f.slices.length}, out, 0)
  f.slices.forEach((s, i) => {
    if (wide) encodeStruct(FatArch64, {cputype: s.cputype, cpusubtype: s.cpusubtype, offset: s.offset, size: s.size, align: s.align, reserved: s.reserved}, out, 8 + i * FatArch64.size)
    else encodeStruct(FatArch, {cputype: s.cputype, cpusubtype: s.cpusubtype, offset: Number(s.offset), size: Number(s.size), align: s.align}, out, 8 + i * FatArch.size)
    s.bytes.copy(out, Number(s.offset))
  })
  return out
}
