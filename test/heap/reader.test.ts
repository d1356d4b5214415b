import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {crc32c} from '@node-rs/crc32'
import {ImgdumpError} from '../../src/errors.js'
import {bufferSource, fileSource, readHeapHeader, summarize, walkChunks} from '../../src/heap/index.js'

const root = join(import.meta.dirname, '../..')

interface ChildReport {
  base: string
  brk: string
  live: [string, number][]
  write: {rc: number; crc: number; written: string}
  checkHeap: number
  liveHeader: {magic: string; nMalloc: string}
  crcPairs: [number, number][]
}

function buildHeap(dir: string, offset: number, seed: number): {report: ChildReport; dump: string} {
  const make = spawnSync('make', ['-s', '-C', join(root, 'native')], {encoding: 'utf8'})
  assert.equal(make.status, 0, make.stderr)
  const dump = join(dir, `heap-${seed}.bin`)
  // setarch -R: the child starts pinned, so loading libimgdump.so does not re-exec Node.
  const r = spawnSync('setarch', ['-R', process.execPath, '--import', 'tsx', join(import.meta.dirname, 'fixtures/build-heap.ts'), dump, String(offset), String(seed)],
    {encoding: 'utf8', cwd: root, env: {...process.env, IMGDUMP_HEAP_SIZE: '1G'}})
  assert.equal(r.status, 0, `child failed: ${r.stderr}`)
  return {report: JSON.parse(r.stdout) as ChildReport, dump}
}

function usedSet(chunks: Iterable<{state: string; payload: bigint; usable: bigint}>): Map<bigint, bigint> {
  const m = new Map<bigint, bigint>()
  for (const c of chunks) if (c.state === 'used') m.set(c.payload, c.usable)
  return m
}

describe('src/heap reader against a heap built through koffi', function () {
  this.timeout(60000)
  let dir: string
  let built: {report: ChildReport; dump: string}
  const offset = 3 * 4096 + 100

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'imgdump-heap-'))
    built = buildHeap(dir, offset, 7)
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('the C writer wrote the heap with a CRC equal to @node-rs/crc32 of the file bytes', () => {
    const {report, dump} = built
    const size = BigInt(report.brk) - BigInt(report.base)
    assert.equal(report.write.rc, 0)
    assert.equal(BigInt(report.write.written), size)
    const file = readFileSync(dump)
    assert.equal(file.length, offset + Number(size))
    assert.equal(report.write.crc, crc32c(file.subarray(offset)))
    assert.equal(report.checkHeap, 0, 'the C heap walk found the heap consistent')
    assert.equal(report.liveHeader.magic, '50414548504d4449', 'the bindings read the live header')
    assert.ok(Number(report.liveHeader.nMalloc) >= 1800, `only ${report.liveHeader.nMalloc} allocations counted`)
  })

  it('walks the image file and reports exactly the live allocations', () => {
    const {report, dump} = built
    const base = BigInt(report.base)
    const src = fileSource(dump, BigInt(offset), base, BigInt(report.brk) - base)
    try {
      const h = readHeapHeader(src)
      assert.equal(h.generation, 5n, 'generation set by the writer')
      assert.equal(h.lock, 0)
      assert.equal(h.saveInProgress, 0)
      const used = usedSet(walkChunks(src, h))
      assert.equal(used.size, report.live.length)
      for (const [addr, n] of report.live) {
        const usable = used.get(BigInt(addr))
        assert.ok(usable !== undefined, `live block 0x${BigInt(addr).toString(16)} not found by the walk`)
        assert.ok(usable >= BigInt(n), `usable ${usable} < requested ${n}`)
      }
      const s = summarize(src, h)
      assert.equal(s.used, report.live.length)
      assert.equal(s.usedBytes, h.alloc.inUseBytes, 'walked in-use bytes equal the allocator counter')
      assert.equal(s.quickBytes, h.alloc.quickBytes)
    } finally {
      src.close()
    }
  })

  it('reads the same from a buffer as from the file', () => {
    const {report, dump} = built
    const base = BigInt(report.base)
    const bytes = readFileSync(dump).subarray(offset)
    const src = bufferSource(bytes, base)
    const h = readHeapHeader(src)
    assert.deepEqual([...usedSet(walkChunks(src, h)).keys()].map(String).sort(), report.live.map(([a]) => a).sort())
  })

  it('libimgdump crc32c equals @node-rs/crc32 crc32c', () => {
    for (const [c, js] of built.report.crcPairs) assert.equal(c, js)
  })

  it('malformed heaps give typed parse errors, never a crash', () => {
    const {report, dump} = built
    const base = BigInt(report.base)
    const good = readFileSync(dump).subarray(offset)
    const expectCode = (buf: Buffer, code: string) => {
      const src = bufferSource(buf, base)
      assert.throws(() => {
        const h = readHeapHeader(src)
        for (const _ of walkChunks(src, h)) { /* walk */ }
      }, (e: unknown) => e instanceof ImgdumpError && e.phase === 'parse' && e.code === code, `expected ${code}`)
    }
    const bad = (edit: (b: Buffer) => void) => {
      const b = Buffer.from(good)
      edit(b)
      return b
    }
    expectCode(bad((b) => b.writeUInt32LE(0, 0)), 'HEAP_MAGIC')
    expectCode(bad((b) => b.writeUInt32LE(2, 8)), 'HEAP_VERSION')
    expectCode(good.subarray(0, 40), 'HEAP_OUT_OF_RANGE')
    expectCode(good.subarray(0, 4096), 'HEAP_TRUNCATED')
    expectCode(good.subarray(0, good.length - 64), 'HEAP_TRUNCATED')
    const h = readHeapHeader(bufferSource(good, base))
    const first = Number(h.alloc.firstChunk - base)
    expectCode(bad((b) => b.writeBigUInt64LE(0x10n | 1n | 2n, first + 8)), 'HEAP_CHUNK_SIZE')
    expectCode(bad((b) => b.writeBigUInt64LE(b.readBigUInt64LE(first + 8) & ~1n, first + 8)), 'HEAP_CHUNK_PINUSE')
    expectCode(bad((b) => b.writeBigUInt64LE(BigInt(report.base) + 1n, 16)), 'HEAP_BASE')
    // Random bit flips in the header and the first chunks: a clean walk or a typed error.
    let seed = 3
    const span = Math.min(good.length, 64 * 1024)
    for (let i = 0; i < 60; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648
      const b = Buffer.from(good)
      b[seed % span] ^= 1 << (seed % 8)
      try {
        const src = bufferSource(b, base)
        for (const _ of walkChunks(src, readHeapHeader(src))) { /* walk */ }
      } catch (e) {
        assert.ok(e instanceof ImgdumpError && e.phase === 'parse', `untyped error: ${String(e)}`)
      }
    }
  })
})
