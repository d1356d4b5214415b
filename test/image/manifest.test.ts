import assert from 'node:assert/strict'
import {crc32c} from '@node-rs/crc32'
import {decodeManifest, encodeManifest, type Manifest} from '../../src/image/manifest.js'
import {ImgdumpError} from '../../src/errors.js'

function sample(): Manifest {
  return {
    generation: 3n, createdNs: 1763850000123456789n, heapHeader: 0x600000000000n, loadBias: 0x555555554000n,
    stackLimit: 0x800000n, flags: 3, format: 1, runtimePath: '/usr/local/bin/lisp',
    runtimeDigest: Uint8Array.from({length: 32}, (_, i) => i * 7), originalSize: 0x4a38n,
    parentDigest: Uint8Array.from({length: 32}, (_, i) => 255 - i),
    libraries: [
      {base: 0x7ffff7d8a000n, path: '/lib/x86_64-linux-gnu/libc.so.6', buildId: 'deadbeef00112233'},
      {base: 0x7ffff7fc3000n, path: '/lib64/ld-linux-x86-64.so.2', buildId: null},
    ],
    segments: [
      {role: 'data', address: 0x555555557dd0n, memSize: 0x258n, fileOffset: 0x5dd0n, fileSize: 0x258n},
      {role: 'heap', address: 0x600000000000n, memSize: 0x2000n, fileOffset: 0x8000n, fileSize: 0x1100n},
      {role: 'reservation', address: 0x600000002000n, memSize: 0xffffe000n, fileOffset: 0x20000n, fileSize: 0n},
    ],
    payloads: [
      {fileOffset: 0x5dd0n, length: 0x230n, crc32c: 0xdeadbeef, source: 'original'},
      {fileOffset: 0x6000n, length: 0x28n, crc32c: 0x12345678, source: 'memory'},
    ],
    undo: [{fileOffset: 32n, original: Uint8Array.of(0x40, 0, 0, 0, 0, 0, 0, 0)}, {fileOffset: 56n, original: Uint8Array.of(13, 0)}],
  }
}

describe('image manifest v1', () => {
  it('round-trips every field (re-encoded from the decoded value)', () => {
    const m = sample()
    const bytes = encodeManifest(m)
    const back = decodeManifest(bytes)
    assert.deepEqual(back, m)
    assert.deepEqual(encodeManifest(back), bytes)
  })

  it('lays out the header exactly as images/README.md says', () => {
    const b = Buffer.from(encodeManifest(sample()))
    assert.equal(b.subarray(0, 8).toString('latin1'), 'IMGDMNF1')
    assert.equal(b.readUInt32LE(8), 1)
    assert.equal(b.readUInt32LE(12), 168)
    assert.equal(b.readUInt32LE(16), b.length)
    assert.equal(b.readBigUInt64LE(24), 3n)
    assert.equal(b.readBigUInt64LE(40), 0x600000000000n)
    assert.equal(b.readBigUInt64LE(48), 0x555555554000n)
    assert.equal(b.readUInt32LE(64), 3)
    assert.equal(b.readUInt32LE(68), 1)
    assert.deepEqual([72, 76, 80, 84].map((o) => b.readUInt32LE(o)), [2, 3, 2, 2])
    assert.equal(b.readBigUInt64LE(128), 0x4a38n)
    assert.deepEqual([...b.subarray(136, 168)], Array.from({length: 32}, (_, i) => 255 - i))
    // Table sizes: 168 + 2×24 + 3×48 + 2×24 + 2×16 + blob.
    assert.equal(b.length, 168 + 48 + 144 + 48 + 32 + b.readUInt32LE(88))
    // Segment role and payload source as numbers at their documented offsets.
    const segs = 168 + 48
    assert.equal(b.readUInt32LE(segs + 48 * 2), 4)
    assert.equal(b.readBigUInt64LE(segs + 48 + 8), 0x600000000000n)
    const pays = segs + 144
    assert.equal(b.readUInt32LE(pays + 16), 0xdeadbeef)
    assert.equal(b.readUInt32LE(pays + 20), 2)
    // The CRC is CRC32C of the whole manifest with the crc field zero (independent recomputation).
    const z = Buffer.from(b)
    z.fill(0, 20, 24)
    assert.equal(b.readUInt32LE(20), crc32c(z) >>> 0)
    // Strings: runtime path is NUL-terminated UTF-8 in the blob; a null build-id is 0xffffffff.
    const blob = b.length - b.readUInt32LE(88)
    const rp = b.readUInt32LE(92)
    assert.equal(b.subarray(blob + rp, b.indexOf(0, blob + rp)).toString(), '/usr/local/bin/lisp')
    assert.equal(b.readUInt32LE(168 + 24 + 12), 0xffffffff)
  })

  it('a fresh process\'s image has no parent: zeros on disk, null decoded', () => {
    const b = encodeManifest({...sample(), parentDigest: null})
    assert.deepEqual([...b.subarray(136, 168)], new Array(32).fill(0))
    assert.equal(decodeManifest(b).parentDigest, null)
  })

  it('detects every single-bit flip', () => {
    const bytes = encodeManifest(sample())
    for (let i = 0; i < bytes.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Uint8Array.from(bytes)
        copy[i] ^= 1 << bit
        assert.throws(() => decodeManifest(copy), (e: unknown) =>
          e instanceof ImgdumpError && /^MANIFEST_/.test(e.code) && (e.phase === 'verify' || e.phase === 'parse'),
        `flip of bit ${bit} in byte ${i} went unnoticed`)
      }
    }
  })

  it('refuses truncation, a wrong version and lying counts with typed errors', () => {
    const bytes = encodeManifest(sample())
    const code = (f: () => unknown) => { try { f(); return 'none' } catch (e) { return (e as ImgdumpError).code } }
    assert.equal(code(() => decodeManifest(bytes.subarray(0, 100))), 'MANIFEST_TRUNCATED')
    assert.equal(code(() => decodeManifest(bytes.subarray(0, bytes.length - 1))), 'MANIFEST_TRUNCATED')
    const v2 = Buffer.from(bytes)
    v2.writeUInt32LE(2, 8)
    assert.equal(code(() => decodeManifest(v2)), 'MANIFEST_BAD_VERSION')
    const lying = Buffer.from(bytes)
    lying.writeUInt32LE(0xffffffff, 80)
    assert.equal(code(() => decodeManifest(lying)), 'MANIFEST_BAD_SIZE')
    // A longer buffer (padded note descriptor) is fine.
    assert.deepEqual(decodeManifest(Buffer.concat([bytes, Buffer.alloc(3)])), sample())
  })
})
