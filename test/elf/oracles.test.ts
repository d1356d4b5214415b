import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {describeElf, parseElf, readDynamicRelocations, type ElfDescription} from './elf-api.js'
import {CORPUS, corpusFile, systemBinaries} from './corpus.js'

/**
 * Independent oracles: readelf (binutils), llvm-readobj (LLVM, JSON output) and the npm
 * package elf-tools must agree with our model on segments, sections, entry, build-id,
 * interpreter and needed libraries, for every corpus file.
 */
const big = (s: string): bigint => BigInt(s.startsWith('0x') ? s : '0x' + s)

function readelf(args: string[], path: string): string {
  const r = spawnSync('readelf', [...args, '-W', path], {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
}

interface Oracle {
  entry: bigint
  segments: {type: string; offset: bigint; vaddr: bigint; paddr: bigint; filesz: bigint; memsz: bigint; align: bigint}[]
  sections: {index: number; name: string; addr: bigint; offset: bigint; size: bigint}[]
  buildId: string | null
  interpreter: string | null
  needed: string[]
}

function fromReadelf(path: string): Oracle {
  const h = readelf(['-h'], path)
  const l = readelf(['-l'], path)
  const s = readelf(['-S'], path)
  const n = readelf(['-n'], path)
  const d = readelf(['-d'], path)
  const segments = [...l.matchAll(/^\s+([A-Z_0-9+x]+)\s+0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) 0x([0-9a-f]+) [RWE ]{3} (?:0x)?([0-9a-f]+)$/gm)]
    .map((m) => ({type: m[1], offset: big(m[2]), vaddr: big(m[3]), paddr: big(m[4]), filesz: big(m[5]), memsz: big(m[6]), align: big(m[7])}))
  const sections = [...s.matchAll(/^\s*\[\s*(\d+)\]\s+(\S+)?\s+(\S+)\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)\s/gm)]
    .map((m) => ({index: Number(m[1]), name: m[2] ?? '', addr: big(m[4]), offset: big(m[5]), size: big(m[6])}))
  return {
    entry: big(/Entry point address:\s+(0x[0-9a-f]+)/.exec(h)![1]),
    segments, sections,
    buildId: /Build ID: ([0-9a-f]+)/.exec(n)?.[1] ?? null,
    interpreter: /\[Requesting program interpreter: (.*)\]/.exec(l)?.[1] ?? null,
    needed: [...d.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]),
  }
}

function fromLlvmReadobj(path: string): Oracle {
  const r = spawnSync('llvm-readobj-16', ['--elf-output-style=JSON', '--file-headers', '--program-headers', '--section-headers', path], {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  const j = JSON.parse(r.stdout)[0]
  // Notes in one segment come out as duplicate "Note" keys, which JSON.parse collapses: match the text.
  const notes = spawnSync('llvm-readobj-16', ['--elf-output-style=JSON', '--notes', path], {encoding: 'utf8'}).stdout
  // --needed-libs JSON output of LLVM 16 is not valid JSON (unquoted names): read the LLVM style.
  const needed = spawnSync('llvm-readobj-16', ['--needed-libs', path], {encoding: 'utf8'}).stdout
  const neededList = /NeededLibraries \[\n([\s\S]*?)\]/.exec(needed)?.[1].split('\n').map((x) => x.trim()).filter(Boolean) ?? []
  const buildIds = notes.match(/"Build ID":"([0-9a-f]+)"/)
  return {
    entry: BigInt(j.ElfHeader.Entry),
    segments: (j.ProgramHeaders ?? []).map(({ProgramHeader: p}: any) => ({type: p.Type.Value.replace(/^PT_/, ''), offset: BigInt(p.Offset), vaddr: BigInt(p.VirtualAddress),
      paddr: BigInt(p.PhysicalAddress), filesz: BigInt(p.FileSize), memsz: BigInt(p.MemSize), align: BigInt(p.Alignment)})),
    sections: (j.Sections ?? []).map(({Section: s}: any) => ({index: s.Index, name: s.Name.Value, addr: BigInt(s.Address), offset: BigInt(s.Offset), size: BigInt(s.Size)})),
    buildId: buildIds?.[1] ?? null,
    interpreter: null,
    needed: neededList,
  }
}

function ours(path: string): {d: ElfDescription; o: Oracle} {
  const bytes = readFileSync(path)
  const d = describeElf(parseElf(bytes), bytes.length)
  return {d, o: {
    entry: big(d.entry),
    segments: d.programHeaders.map((p) => ({type: p.type.replace(/^PT_/, ''), offset: big(p.offset), vaddr: big(p.vaddr), paddr: big(p.paddr), filesz: big(p.filesz), memsz: big(p.memsz), align: big(p.align)})),
    sections: d.sections.map((s) => ({index: s.index, name: s.name, addr: big(s.addr), offset: big(s.offset), size: big(s.size)})),
    buildId: d.buildId, interpreter: d.interpreter, needed: d.needed,
  }}
}

describe('ELF model agrees with independent parsers', () => {
  for (const name of CORPUS) {
    describe(name, () => {
      it('readelf -W: entry, segments, sections, build-id, interpreter, needed', () => {
        const {o} = ours(corpusFile(name))
        const r = fromReadelf(corpusFile(name))
        assert.equal(o.entry, r.entry)
        assert.equal(r.segments.length, o.segments.length, 'readelf listed every segment')
        assert.deepEqual(o.segments, r.segments)
        assert.deepEqual(o.sections, r.sections)
        assert.equal(o.buildId, r.buildId)
        assert.ok(o.buildId, 'the corpus is built with a build-id')
        assert.equal(o.interpreter, r.interpreter)
        assert.deepEqual(o.needed, r.needed)
      })

      it('llvm-readobj: entry, segments, sections, build-id, needed', () => {
        const {o} = ours(corpusFile(name))
        const r = fromLlvmReadobj(corpusFile(name))
        assert.equal(o.entry, r.entry)
        assert.deepEqual(o.segments, r.segments)
        assert.deepEqual(o.sections, r.sections)
        assert.equal(o.buildId, r.buildId)
        assert.deepEqual(o.needed, r.needed)
      })
    })
  }

  it('elf-tools (second parser): header, segments and sections of the files it can read', () => {
    const elfTools = createRequire(import.meta.url)('elf-tools') as {parse(b: Buffer): any}
    let compared = 0
    for (const name of CORPUS) {
      const bytes = readFileSync(corpusFile(name))
      let t: any
      try { t = elfTools.parse(bytes) } catch { continue } // it cannot read files without sections
      const {d} = ours(corpusFile(name))
      assert.equal(BigInt(t.header.entry), big(d.entry), name)
      assert.equal(t.programs.length, d.programHeaders.length, name)
      t.programs.forEach((p: any, i: number) => {
        const q = d.programHeaders[i]
        assert.deepEqual([p.header.offset, p.header.vaddr, p.header.filesz, p.header.memsz, p.header.align].map(BigInt),
          [q.offset, q.vaddr, q.filesz, q.memsz, q.align].map(big), `${name} segment ${i}`)
      })
      // elf-tools drops the null section 0 of some files: compare the named sections.
      assert.deepEqual(t.sections.filter((s: any) => s.header.name !== '').map((s: any) => [s.header.name, BigInt(s.header.addr), BigInt(s.header.offset), BigInt(s.header.size)]),
        d.sections.filter((s) => s.name !== '').map((s) => [s.name, big(s.addr), big(s.offset), big(s.size)]), name)
      compared++
    }
    assert.ok(compared >= 5, `elf-tools compared ${compared} files`)
  })

  it('classifies the four kinds (and a shared object) as the linker built them', () => {
    const kinds = Object.fromEntries(CORPUS.map((n) => [n, ours(corpusFile(n)).d.kind]))
    assert.deepEqual(kinds, {
      'aarch64-static': 'exec', 'aarch64-static-pie': 'static-pie', static: 'exec', 'static-pie': 'static-pie', dynamic: 'exec', pie: 'pie', 'pie-stripped': 'pie', 'pie-nosections': 'pie',
      'static-nosections': 'exec', 'static-pie-nosections': 'static-pie', 'libprobe.so': 'shared-object',
    })
    // readelf's own wording for the header type agrees (EXEC vs DYN).
    for (const n of CORPUS) {
      const t = /Type:\s+(\S+)/.exec(readelf(['-h'], corpusFile(n)))![1]
      assert.equal(t, ours(corpusFile(n)).d.elfType.replace(/^ET_/, ''))
    }
  })

  it('symbol counts agree with readelf --syms', () => {
    for (const n of ['static', 'pie', 'pie-stripped', 'libprobe.so']) {
      const {d} = ours(corpusFile(n))
      const out = readelf(['--syms'], corpusFile(n))
      const count = (table: string): number | null => {
        const m = new RegExp(`Symbol table '${table.replace('.', '\\.')}' contains (\\d+) entries`).exec(out)
        return m ? Number(m[1]) : null
      }
      assert.deepEqual(d.symbols, {symtab: count('.symtab'), dynsym: count('.dynsym')}, n)
    }
  })

  it('dynamic relocations (RELA, JMPREL, packed RELR) agree with readelf -r', () => {
    const files = [...['pie', 'dynamic', 'static-pie', 'pie-stripped', 'libprobe.so'].map(corpusFile), ...systemBinaries().filter((p) => !p.endsWith('/node'))]
    let relrSeen = 0
    for (const path of files) {
      const out = readelf(['-r'], path)
      const rows = [...out.matchAll(/^([0-9a-f]{16}) +([0-9a-f]{16}) +(\S+) +(?:[0-9a-f]{16} +(\S+?)(?:@\S+)? +([+-]) +([0-9a-f]+)|([0-9a-f]+))$/gm)]
        .map((m) => [big(m[1]), big(m[2]), m[3], m[4] ?? '', m[7] !== undefined ? BigInt.asIntN(64, big(m[7])) : (m[5] === '-' ? -big(m[6]) : big(m[6]))])
      const relrHead = /'\.relr\.dyn' at offset 0x[0-9a-f]+ contains \d+ entries:\n\s+(\d+) offsets\n((?:[0-9a-f]{16}\n?)*)/.exec(out)
      const elf = parseElf(readFileSync(path))
      const r = readDynamicRelocations(elf)
      assert.deepEqual(r.relocations.map((x) => [x.offset, (BigInt(x.symbol) << 32n) | BigInt(x.type), x.typeName, x.symbolName, x.addend]), rows, path)
      if (relrHead) {
        relrSeen++
        assert.equal(r.relr.length, Number(relrHead[1]), path)
        assert.deepEqual(r.relr, relrHead[2].trim().split('\n').map(big), path)
      } else assert.equal(r.relr.length, 0, path)
    }
    assert.ok(relrSeen > 0 || !files.some((f) => f.endsWith('libc.so.6')), 'glibc 2.36+ libc uses DT_RELR')
  })
})
