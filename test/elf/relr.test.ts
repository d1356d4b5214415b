import assert from 'node:assert/strict'
import {decodeRelr, encodeRelr} from '../../src/elf/relocations.js'

describe('DT_RELR encoding', () => {
  it('decodes the linker encoding and re-encodes subsets of it', () => {
    // One address entry, then a bitmap for words +1 and +3 after it (bit 0 of the bitmap = next word).
    const words = [0x4000n, (0b101n << 1n) | 1n]
    assert.deepEqual(decodeRelr(words), [0x4000n, 0x4008n, 0x4018n])
    assert.deepEqual(encodeRelr([0x4000n, 0x4008n, 0x4018n]), words)
    let seed = 7
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff)
    for (let round = 0; round < 200; round++) {
      const set = new Set<bigint>()
      const n = rnd() % 300
      for (let i = 0; i < n; i++) set.add(0x10000n + BigInt(rnd() % 4000) * 8n)
      const addrs = [...set].sort((a, b) => (a < b ? -1 : 1))
      const enc = encodeRelr(addrs)
      assert.deepEqual(decodeRelr(enc), addrs)
      // A no-op bitmap (value 1) appended relocates nothing.
      assert.deepEqual(decodeRelr([...enc, 1n, 1n]), addrs)
    }
  })
})
