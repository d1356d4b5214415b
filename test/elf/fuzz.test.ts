import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {ImgdumpError} from '../../src/errors.js'
import {describeElf, layoutElf, parseElf, readDynamicRelocations, readSymbols, serializeElf, symbolTables} from './elf-api.js'
import {corpusFile} from './corpus.js'

/**
 * Deterministic mutation fuzzing of the reader and views: bit flips and overwritten words in
 * the header tables and the structures they point at. Every outcome must be a parsed model
 * that round-trips, or a typed ImgdumpError — never a TypeError, RangeError or a hang.
 */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s ^= s << 13; s >>>= 0
    s ^= s >>> 17
    s ^= s << 5; s >>>= 0
    return s / 2 ** 32
  }
}

describe('ELF reader under mutation (no untyped failure)', () => {
  for (const [name, count] of [['pie', 1000], ['static-pie', 250], ['pie-nosections', 1000]] as const) {
    it(`${name}: ${count} mutants`, () => {
      const base = readFileSync(corpusFile(name))
      const elf = parseElf(base)
      // Hot spots: the ELF header, the program headers, the section headers, .dynamic.
      const spots: [number, number][] = [[0, 64], [Number(elf.header.e_phoff), elf.programHeaders.length * 56]]
      if (elf.sections.length) spots.push([Number(elf.header.e_shoff), elf.sections.length * 64])
      const dyn = elf.programHeaders.find((p) => p.p_type === 2)
      if (dyn) spots.push([Number(dyn.p_offset), Number(dyn.p_filesz)])
      const rnd = prng(0x1de1f + name.length)
      const outcomes = {parsed: 0, typed: 0}
      for (let i = 0; i < count; i++) {
        const b = Buffer.from(base)
        const [start, len] = spots[Math.floor(rnd() * spots.length)]
        const at = start + Math.floor(rnd() * len)
        if (rnd() < 0.5) b[at] ^= 1 << Math.floor(rnd() * 8)
        else if (at + 8 <= b.length) b.writeBigUInt64LE(BigInt(Math.floor(rnd() * 2 ** 32)) << BigInt(Math.floor(rnd() * 33)), at)
        try {
          const m = parseElf(b)
          describeElf(m, b.length)
          readDynamicRelocations(m)
          for (const t of symbolTables(m)) readSymbols(m, t)
          layoutElf(m)
          assert.equal(Buffer.compare(Buffer.from(serializeElf(m)), b), 0, `mutant ${i} round-trips`)
          outcomes.parsed++
        } catch (e) {
          if (!(e instanceof ImgdumpError)) throw new Error(`mutant ${i} (byte ${at}): untyped ${(e as Error).stack}`)
          outcomes.typed++
        }
      }
      assert.ok(outcomes.typed > count / 10 && outcomes.parsed > count / 10, JSON.stringify(outcomes))
    })
  }
})
