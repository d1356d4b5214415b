/**
 * Everything load commands locate inside __LINKEDIT, declared once as a table, and the
 * re-layout that moves __LINKEDIT (shifting every such offset) and lets pieces change size
 * (re-encoded opcode streams, a chained-fixups blob with more segments).
 */
import {pageSizeFor} from './definitions.js'
import {MachoError} from './errors.js'
import {alignUp} from '../binary/align.js'
import {type CommandOf, findSegment, type LoadCommand, type MachoFile, readFileRange} from './model.js'
import {commandName} from './read.js'

type Num = number
interface PieceRule<K extends LoadCommand['kind']> {
  kind: K
  name: (c: CommandOf<K>) => string
  get: (c: CommandOf<K>) => {offset: Num; size: Num}
  set: (c: CommandOf<K>, offset: Num, size: Num) => void
}
const rule = <K extends LoadCommand['kind']>(r: PieceRule<K>): PieceRule<LoadCommand['kind']> => r as unknown as PieceRule<LoadCommand['kind']>

const dyldInfo = (field: 'rebase' | 'bind' | 'weak_bind' | 'lazy_bind' | 'export') => rule({
  kind: 'dyld_info', name: () => field,
  get: c => ({offset: c.f[`${field}_off`], size: c.f[`${field}_size`]}),
  set: (c, o, s) => { c.f[`${field}_off`] = o; c.f[`${field}_size`] = s },
})
const dysym = (off: 'tocoff' | 'modtaboff' | 'extrefsymoff' | 'indirectsymoff' | 'extreloff' | 'locreloff',
  count: 'ntoc' | 'nmodtab' | 'nextrefsyms' | 'nindirectsyms' | 'nextrel' | 'nlocrel', entry: number) => rule({
  kind: 'dysymtab', name: () => off,
  get: c => ({offset: c.f[off], size: c.f[count] * entry}),
  set: (c, o, s) => { c.f[off] = o; c.f[count] = s / entry },
})

/** The table: every (command, offset field, size) that points into __LINKEDIT. */
export const LINKEDIT_PIECES: PieceRule<LoadCommand['kind']>[] = [
  dyldInfo('rebase'), dyldInfo('bind'), dyldInfo('weak_bind'), dyldInfo('lazy_bind'), dyldInfo('export'),
  rule({kind: 'linkedit_data', name: c => commandName(c.f.cmd), get: c => ({offset: c.f.dataoff, size: c.f.datasize}),
    set: (c, o, s) => { c.f.dataoff = o; c.f.datasize = s }}),
  rule({kind: 'symtab', name: () => 'symtab', get: c => ({offset: c.f.symoff, size: c.f.nsyms * 16}),
    set: (c, o, s) => { c.f.symoff = o; c.f.nsyms = s / 16 }}),
  rule({kind: 'symtab', name: () => 'strtab', get: c => ({offset: c.f.stroff, size: c.f.strsize}),
    set: (c, o, s) => { c.f.stroff = o; c.f.strsize = s }}),
  dysym('tocoff', 'ntoc', 8), dysym('modtaboff', 'nmodtab', 56), dysym('extrefsymoff', 'nextrefsyms', 4),
  dysym('indirectsymoff', 'nindirectsyms', 4), dysym('extreloff', 'nextrel', 8), dysym('locreloff', 'nlocrel', 8),
]

export interface LinkeditPiece {name: string; offset: number; size: number; command: LoadCommand; rule: PieceRule<LoadCommand['kind']>}

/** Every piece with bytes or a non-zero offset, sorted by offset. */
export function linkeditPieces(m: MachoFile): LinkeditPiece[] {
  const out: LinkeditPiece[] = []
  for (const c of m.commands) {
    for (const r of LINKEDIT_PIECES) {
      if (r.kind !== c.kind) continue
      const {offset, size} = r.get(c)
      if (offset === 0 && size === 0) continue
      out.push({name: r.name(c), offset, size, command: c, rule: r})
    }
  }
  // LC_NOTE data lives wherever the linker put it; it is shifted only if inside __LINKEDIT (see relayout).
  return out.sort((a, b) => a.offset - b.offset || a.size - b.size)
}

export function linkeditSegment(m: MachoFile): CommandOf<'segment'> {
  const le = findSegment(m, '__LINKEDIT')
  if (!le) throw new MachoError('edit', 'MACHO_NO_SEGMENT', 'no __LINKEDIT segment')
  return le
}

/**
 * Move __LINKEDIT to `fileoff`/`vmaddr` and replace the named pieces' bytes. Pieces keep their
 * order and the gaps between them; a piece that changes size shifts every later piece by the
 * change rounded up to 8 bytes (the linker's alignment of linkedit pieces).
 */
export function relayoutLinkedit(m: MachoFile, fileoff: bigint, vmaddr: bigint, replace: Map<string, Buffer> = new Map()): void {
  const le = linkeditSegment(m)
  const oldStart = Number(le.f.fileoff), oldEnd = oldStart + Number(le.f.filesize)
  const old = readFileRange(m, le.f.fileoff, le.f.filesize)
  const pieces = linkeditPieces(m)
  for (const p of pieces) {
    if (p.offset < oldStart || p.offset + p.size > oldEnd) {
      throw new MachoError('edit', 'MACHO_BAD_LAYOUT', `${p.name} (${p.offset}+${p.size}) lies outside __LINKEDIT ${oldStart}+${oldEnd - oldStart}`, {offset: p.offset})
    }
  }
  const parts: Buffer[] = []
  let oldCursor = oldStart, shift = 0
  const newOffsets: number[] = []
  let lastEnd = oldStart
  for (const p of pieces) {
    const rep = replace.get(p.name)
    if (p.offset < lastEnd) { // nested in or overlapping the previous piece: moves with it
      if (rep) throw new MachoError('edit', 'MACHO_BAD_LAYOUT', `cannot resize ${p.name}: it overlaps another linkedit piece`, {offset: p.offset})
      newOffsets.push(Number(fileoff) + p.offset - oldStart + shift); continue
    }
    parts.push(old.subarray(oldCursor - oldStart, p.offset - oldStart))
    newOffsets.push(Number(fileoff) + p.offset - oldStart + shift)
    if (rep) {
      // The old piece owned its bytes up to the next piece (its alignment padding), never into it.
      const next = pieces.find(q => q.offset > p.offset)?.offset ?? oldEnd
      const padded = Number(alignUp(BigInt(rep.length), 8n)), was = Math.max(p.size, Math.min(Number(alignUp(BigInt(p.size), 8n)), next - p.offset))
      parts.push(rep, Buffer.alloc(padded - rep.length))
      oldCursor = Math.min(p.offset + was, oldEnd)
      shift += padded - (oldCursor - p.offset)
    } else {
      parts.push(old.subarray(p.offset - oldStart, p.offset + p.size - oldStart))
      oldCursor = p.offset + p.size
    }
    lastEnd = Math.max(lastEnd, p.offset + p.size)
  }
  parts.push(old.subarray(oldCursor - oldStart))
  pieces.forEach((p, i) => { const rep = replace.get(p.name); p.rule.set(p.command, newOffsets[i], rep ? rep.length : p.size) })
  for (const c of m.commands) {
    if (c.kind === 'note' && c.f.offset >= BigInt(oldStart) && c.f.offset < BigInt(oldEnd)) c.f.offset += fileoff - BigInt(oldStart)
  }
  const bytes = Buffer.concat(parts)
  const pageRounded = le.f.vmsize !== le.f.filesize
  le.f.fileoff = fileoff
  le.f.vmaddr = vmaddr
  le.f.filesize = BigInt(bytes.length)
  if (pageRounded) le.f.vmsize = alignUp(le.f.filesize, pageSizeFor(m.header.cputype))
  else le.f.vmsize = le.f.filesize
  m.chunks = m.chunks.filter(c => c.segment !== '__LINKEDIT')
  if (bytes.length) m.chunks.push({offset: fileoff, bytes, segment: '__LINKEDIT'})
}
