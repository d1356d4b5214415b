/**
 * Symbol table (nlist_64 + string table) and exports trie readers: what `imgdump inspect`
 * shows and what tests compare with llvm-nm-16 and llvm-objdump-16 --exports-trie.
 */
import {Nlist64} from './definitions.js'
import {MachoError} from './errors.js'
import {type StructValue, decodeStruct} from '../binary/field-table.js'
import {sliceChecked} from './checked-slice.js'
import {findCommand, type MachoFile, readFileRange} from './model.js'

export type Nlist = StructValue<typeof Nlist64> & {name: string}

export function readSymbols(m: MachoFile): Nlist[] {
  const st = findCommand(m, 'symtab')
  if (!st) return []
  const table = readFileRange(m, BigInt(st.f.symoff), BigInt(st.f.nsyms) * BigInt(Nlist64.size))
  const strings = readFileRange(m, BigInt(st.f.stroff), BigInt(st.f.strsize))
  return Array.from({length: st.f.nsyms}, (_, i) => {
    const n = decodeStruct(Nlist64, table, i * Nlist64.size)
    if (n.n_strx >= strings.length && n.n_strx !== 0) {
      throw new MachoError('parse', 'MACHO_BAD_SYMBOL', `symbol ${i}: name offset ${n.n_strx} outside the string table`, {offset: st.f.symoff + i * Nlist64.size, value: n.n_strx})
    }
    const end = strings.indexOf(0, n.n_strx)
    return {...n, name: strings.subarray(n.n_strx, end < 0 ? strings.length : end).toString('utf8')}
  })
}

export interface ExportEntry {name: string; flags: bigint; address: bigint | null; reexport?: {ordinal: bigint; name: string}}

const EXPORT_SYMBOL_FLAGS_REEXPORT = 0x08n, EXPORT_SYMBOL_FLAGS_STUB_AND_RESOLVER = 0x10n

/** Walk the exports trie (dyld's format: terminal info, then edges with child offsets). */
export function readExportsTrie(trie: Buffer): ExportEntry[] {
  const out: ExportEntry[] = []
  const seen = new Set<number>()
  const uleb = (at: {p: number}): bigint => {
    let v = 0n, shift = 0n
    for (;;) {
      const b = sliceChecked(trie, at.p++, 1, 'exports trie')[0]
      v |= BigInt(b & 0x7f) << shift; shift += 7n
      if (!(b & 0x80)) return v
      if (shift > 63n) throw new MachoError('parse', 'MACHO_BAD_EXPORTS', 'exports trie: ULEB128 too long', {offset: at.p})
    }
  }
  const walk = (node: number, prefix: string): void => {
    if (seen.has(node)) throw new MachoError('parse', 'MACHO_BAD_EXPORTS', `exports trie: node ${node} visited twice (loop)`, {offset: node})
    seen.add(node)
    const at = {p: node}
    const size = uleb(at)
    const children = at.p + Number(size)
    if (size > 0n) {
      const flags = uleb(at)
      if (flags & EXPORT_SYMBOL_FLAGS_REEXPORT) {
        const ordinal = uleb(at)
        const nul = trie.indexOf(0, at.p)
        out.push({name: prefix, flags, address: null, reexport: {ordinal, name: trie.subarray(at.p, nul).toString('utf8')}})
      } else {
        const address = uleb(at)
        if (flags & EXPORT_SYMBOL_FLAGS_STUB_AND_RESOLVER) uleb(at)
        out.push({name: prefix, flags, address})
      }
    }
    at.p = children
    const count = sliceChecked(trie, at.p++, 1, 'exports trie')[0]
    for (let i = 0; i < count; i++) {
      const nul = trie.indexOf(0, at.p)
      if (nul < 0) throw new MachoError('parse', 'MACHO_BAD_EXPORTS', 'exports trie: unterminated edge', {offset: at.p})
      const edge = trie.subarray(at.p, nul).toString('utf8')
      at.p = nul + 1
      const child = Number(uleb(at))
      if (child >= trie.length) throw new MachoError('parse', 'MACHO_BAD_EXPORTS', `exports trie: child offset ${child} outside`, {offset: at.p, value: child})
      walk(child, prefix + edge)
    }
  }
  if (trie.length) walk(0, '')
  return out
}
