import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {
  DynamicDef, ElfHeaderDef, ProgramHeaderDef, SectionHeaderDef, SymbolDef, decodeStructFor, layoutElf, parseElf, serializeElf,
  type ElfFile,
} from './elf-api.js'
import {CORPUS, corpusFile, systemBinaries} from './corpus.js'

/**
 * A fresh model rebuilt from the parsed values only: every field copied into new objects,
 * every table re-encoded by the writer. Only opaque ranges (bytes no structure describes)
 * carry bytes through. Writing it must give the input back byte for byte.
 */
function rebuilt(elf: ElfFile): ElfFile {
  return {
    ...elf,
    header: {...elf.header, ei_magic: Uint8Array.from(elf.header.ei_magic), ei_pad: Uint8Array.from(elf.header.ei_pad)},
    programHeaders: elf.programHeaders.map((p) => ({...p})),
    sections: elf.sections.map((s) => ({...s, header: {...s.header}})),
    contents: elf.contents.map((c) => (c.kind === 'opaque' ? {...c, bytes: Uint8Array.from(c.bytes)} :
      c.kind === 'external' ? {...c} : {...c, entries: c.entries.map((e) => ({...e}))}) as typeof c),
  }
}

function checkRoundTrip(path: string): void {
  const input = readFileSync(path)
  const elf = parseElf(input)
  const out = serializeElf(rebuilt(elf))
  assert.equal(out.length, input.length, `${path}: size`)
  const first = out.findIndex((b, i) => b !== input[i])
  assert.equal(first, -1, `${path}: first differing byte at ${first}`)
  // The structured share of the file really is re-encoded from fields (not all opaque).
  const layout = layoutElf(elf)
  const kinds = new Set(layout.pieces.map((p) => p.kind))
  assert.ok(kinds.has('elf-header') && kinds.has('program-headers'), `${path}: header tables are fields`)
  if (elf.sections.length > 0) assert.ok(kinds.has('section-headers'), `${path}: section headers are fields`)
}

describe('ELF round trip: parse → write unchanged is byte-identical', () => {
  for (const name of CORPUS) it(`corpus: ${name}`, () => checkRoundTrip(corpusFile(name)))
  for (const path of systemBinaries()) it(`system: ${path}`, () => checkRoundTrip(path))

  it('an edited field that is edited back gives the input again', () => {
    const input = readFileSync(corpusFile('pie'))
    const elf = parseElf(input)
    const changed = {...elf, header: {...elf.header, e_entry: elf.header.e_entry + 16n}}
    const a = serializeElf(changed)
    assert.notDeepEqual(a, new Uint8Array(input), 'the entry change is visible')
    assert.equal(new DataView(a.buffer).getBigUint64(24, true), elf.header.e_entry + 16n)
    const back = serializeElf({...changed, header: {...changed.header, e_entry: elf.header.e_entry}})
    assert.deepEqual(back, new Uint8Array(input))
  })

  it('symbol and dynamic tables are written from their entries', () => {
    const input = readFileSync(corpusFile('pie'))
    const elf = parseElf(input)
    const symbols = elf.contents.find((c) => c.kind === 'symbols' && c.label === '.dynsym')
    assert.ok(symbols && symbols.kind === 'symbols')
    // Change one symbol's value through the model: the output shows it at the right offset.
    const entries = symbols.entries.map((e, i) => (i === 1 ? {...e, st_value: 0x1234n} : e))
    const edited = {...elf, contents: elf.contents.map((c) => (c === symbols ? {...symbols, entries} : c))}
    const out = serializeElf(edited)
    const at = Number(symbols.offset) + SymbolDef.size + 8
    assert.equal(new DataView(out.buffer).getBigUint64(at, true), 0x1234n)
    assert.equal(decodeStructFor(DynamicDef, out, Number(elf.contents.find((c) => c.kind === 'dynamic')!.offset)).d_tag, 1n)
  })

  it('field tables add up to the ELF64 sizes', () => {
    assert.deepEqual([ElfHeaderDef.size, ProgramHeaderDef.size, SectionHeaderDef.size, SymbolDef.size, DynamicDef.size], [64, 56, 64, 24, 16])
  })
})
