/**
 * `imgdump inspect` for Mach-O and fat files: a JSON-able description (addresses and sizes
 * as hex strings) and its text rendering. Display only; parsing lives in read.ts. A layer
 * above adds its own facts per slice (imgdump images: src/image/macho-describe.ts) through
 * `extra` and `extraLines`.
 */
import {readChainedFixups} from './chained-fixups.js'
import {readSignature} from './code-signature.js'
import {CPU_NAMES, LC} from './definitions.js'
import {archName, pickSlice, readFat} from './fat.js'
import {findCommand, type MachoFile, readFileRange, segmentCommands} from './model.js'
import {commandName, isFat, readMacho} from './read.js'
import {readExportsTrie, readSymbols} from './symbols.js'
import {hex} from '../binary/hex.js'


export interface MachoSliceDescription {
  format: 'mach-o'
  arch: string
  filetype: number
  flags: string
  commands: {name: string; cmdsize: number; detail?: string}[]
  segments: {name: string; vmaddr: string; vmsize: string; fileoff: string; filesize: string; prot: string; sections: string[]}[]
  libraries: string[]
  uuid: string | null
  entryOffset: string | null
  fixups: 'chained' | 'dyld-info' | 'none'
  chainedSegCount: number | null
  signature: {identifier: string; pageSize: number; codeLimit: number; slots: number; flags: string; cms: boolean} | null
  symbols: number | {error: string}
  exports: number | {error: string}
}
export interface MachoDescription<E = object> {format: 'mach-o' | 'fat'; size: number; slices: (MachoSliceDescription & E)[]}

export interface DescribeOptions {arch?: string}

/** `extra`: facts of a layer above about one slice, added after the Mach-O ones. */
export function describeMacho<E extends object = object>(buf: Buffer, opts: DescribeOptions = {},
  extra?: (m: MachoFile, slice: Buffer) => E): MachoDescription<E> {
  const one = (bytes: Buffer) => {
    const m = readMacho(bytes)
    return {...describeSlice(m), ...(extra?.(m, bytes) as E)}
  }
  if (isFat(buf)) {
    const fat = readFat(buf)
    const slices = opts.arch ? [pickSlice(fat, opts.arch)] : fat.slices
    return {format: 'fat', size: buf.length, slices: slices.map(s => one(s.bytes))}
  }
  return {format: 'mach-o', size: buf.length, slices: [one(buf)]}
}

function commandDetail(c: MachoFile['commands'][number]): string | undefined {
  switch (c.kind) {
    case 'segment': return c.f.segname
    case 'dylib': return c.path
    case 'string': return c.text
    case 'linkedit_data': return `${c.f.dataoff}+${c.f.datasize}`
    case 'symtab': return `${c.f.nsyms} symbols`
    default: return undefined
  }
}

function describeSlice(m: MachoFile): MachoSliceDescription {
  const prot = (p: number) => `${p & 1 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 4 ? 'x' : '-'}`
  const uuid = findCommand(m, 'uuid')
  const main = findCommand(m, 'main')
  const chained = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)
  let chainedSegCount: number | null = null
  if (chained) {
    try { chainedSegCount = readChainedFixups(readFileRange(m, BigInt(chained.f.dataoff), BigInt(chained.f.datasize))).segments.length } catch { chainedSegCount = -1 }
  }
  const sig = readSignature(m)
  const cd = sig?.directories[0]
  const count = (f: () => unknown[]): number | {error: string} => { try { return f().length } catch (e) { return {error: (e as Error).message} } }
  const info = findCommand(m, 'dyld_info'), trie = findCommand(m, 'linkedit_data', LC.LC_DYLD_EXPORTS_TRIE)
  const symbols = count(() => readSymbols(m))
  const exports = count(() => readExportsTrie(info ? readFileRange(m, BigInt(info.f.export_off), BigInt(info.f.export_size))
    : trie ? readFileRange(m, BigInt(trie.f.dataoff), BigInt(trie.f.datasize)) : Buffer.alloc(0)))
  return {
    symbols, exports,
    format: 'mach-o', arch: CPU_NAMES[m.header.cputype] ?? archName(m.header.cputype), filetype: m.header.filetype, flags: hex(m.header.flags),
    commands: m.commands.map(c => ({name: commandName(c.f.cmd), cmdsize: c.f.cmdsize, detail: commandDetail(c)})),
    segments: segmentCommands(m).map(s => ({name: s.f.segname, vmaddr: hex(s.f.vmaddr), vmsize: hex(s.f.vmsize), fileoff: hex(s.f.fileoff),
      filesize: hex(s.f.filesize), prot: prot(s.f.initprot), sections: s.sections.map(x => x.sectname)})),
    libraries: m.commands.flatMap(c => (c.kind === 'dylib' ? [c.path] : [])),
    uuid: uuid ? Buffer.from(uuid.f.uuid).toString('hex') : null,
    entryOffset: main ? hex(main.f.entryoff) : null,
    fixups: chained ? 'chained' : findCommand(m, 'dyld_info') ? 'dyld-info' : 'none',
    chainedSegCount,
    signature: cd ? {identifier: cd.identifier, pageSize: 2 ** cd.f.pageSize, codeLimit: cd.f.codeLimit, slots: cd.f.nCodeSlots,
      flags: hex(cd.f.flags), cms: sig!.hasCms} : null,
  }
}

/** `extraLines`: a layer above's lines for one slice, after the Mach-O ones. */
export function renderMachoText<E extends object>(path: string, d: MachoDescription<E>,
  extraLines?: (slice: MachoSliceDescription & E) => string[]): string {
  const lines = [`${path}: ${d.format === 'fat' ? `fat (universal), ${d.slices.length} slice(s)` : 'Mach-O 64'}, ${d.size} bytes`]
  for (const s of d.slices) {
    lines.push(`  ${s.arch}: filetype ${s.filetype}, flags ${s.flags}, uuid ${s.uuid ?? '-'}, entry ${s.entryOffset ?? '-'}, fixups ${s.fixups}` +
      (s.chainedSegCount !== null ? ` (seg_count ${s.chainedSegCount})` : ''))
    for (const g of s.segments) lines.push(`    ${g.name.padEnd(16)} ${g.vmaddr.padStart(18)} ${g.vmsize.padStart(12)} file ${g.fileoff}+${g.filesize} ${g.prot} ${g.sections.join(' ')}`)
    for (const l of s.libraries) lines.push(`    library ${l}`)
    const n = (v: number | {error: string}) => (typeof v === 'number' ? String(v) : v.error)
    lines.push(`    symbols: ${n(s.symbols)}, exports: ${n(s.exports)}`)
    lines.push(s.signature ? `    signature: ad-hoc${s.signature.cms ? ' + CMS' : ''}, identifier ${s.signature.identifier}, ${s.signature.slots} pages of ${s.signature.pageSize}` : '    signature: none')
    if (extraLines) lines.push(...extraLines(s))
  }
  return lines.join('\n') + '\n'
}
