import assert from 'node:assert/strict'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buildNative, DEFAULT_BASE, DEFAULT_RESERVE, run} from './support.js'

describe('libimgdump allocator: C tests', function () {
  this.timeout(120000)
  let dir: string
  const bin = (name: string) => join(dir, name)

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'imgdump-alloc-'))
    buildNative(dir)
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  for (const seed of [1, 2, 3]) {
    it(`randomized malloc/calloc/realloc/memalign/free against a shadow model (seed ${seed})`, () => {
      const r = run(bin('alloc-random'), [String(seed), '40000'])
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stdout, /^ok seed=/)
    })
  }

  it('reserves 64 GiB at the default base without commit charge, or where IMGDUMP_HEAP_BASE says', () => {
    const r = run(bin('alloc-random'), ['4', '2000'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`base=0x${DEFAULT_BASE.toString(16)} reserve=${DEFAULT_RESERVE}`))
    const moved = run(bin('alloc-random'), ['4', '2000'], {IMGDUMP_HEAP_BASE: '0x700000000000', IMGDUMP_HEAP_SIZE: '1G'})
    assert.equal(moved.status, 0, moved.stderr)
    assert.match(moved.stdout, new RegExp(`base=0x700000000000 reserve=${1n << 30n}`))
  })

  it('four threads churning: contents intact, walk equals the held blocks', () => {
    const r = run(bin('alloc-threads'), ['100000'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^ok threads=4/)
  })

  it('fork while other threads allocate: every child has a usable, consistent heap', () => {
    const r = run(bin('alloc-fork'), ['60'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^ok forks=60/)
  })

  it('exhaustion returns NULL with ENOMEM, no crash; IMGDUMP_DEBUG explains in one line', () => {
    const r = run(bin('alloc-exhaust'), [], {IMGDUMP_HEAP_SIZE: '16M', IMGDUMP_DEBUG: '1'})
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^ok blocks=\d+ bytes=\d+ reserve=16777216/)
    assert.match(r.stderr, /^imgdump: heap exhausted: need up to 0x[0-9a-f]+, reservation ends at 0x600001000000$/m)
  })

  it('a taken address fails cleanly: NULL + ENOMEM, one diagnostic line only with IMGDUMP_DEBUG', () => {
    const quiet = run(bin('alloc-taken'), [], {IMGDUMP_HEAP_BASE: '0x400000'})
    assert.equal(quiet.status, 0, quiet.stdout + quiet.stderr)
    assert.equal(quiet.stdout, 'ok taken\n')
    assert.equal(quiet.stderr, '')
    const loud = run(bin('alloc-taken'), [], {IMGDUMP_HEAP_BASE: '0x400000', IMGDUMP_DEBUG: '1'})
    assert.equal(loud.status, 0, loud.stderr)
    const lines = loud.stderr.trim().split('\n')
    assert.equal(lines.length, 1, loud.stderr)
    assert.match(lines[0], /^imgdump: reserving the heap range at 0x400000 size 0x1000000000 failed: errno 17$/)
  })

  it('roots, hooks, extern slots, regions, strerror and the save writer', () => {
    const r = run(bin('api'), [dir])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'ok api\n')
  })

  it('adopts a heap mapped from a file (restored process): blocks kept, calloc zeroes, grows past it', () => {
    const file = join(dir, 'heap.bin')
    const base = '0x610000000000'
    const c = run(bin('heap-adopt'), ['create', file], {IMGDUMP_HEAP_BASE: base})
    assert.equal(c.status, 0, c.stderr)
    assert.match(c.stdout, /^created base=0x610000000000 brk=0x[0-9a-f]+$/m)
    const a = run(bin('heap-adopt'), ['adopt', file], {ADOPT_FILE: file, ADOPT_BASE: base})
    assert.equal(a.status, 0, a.stderr)
    assert.match(a.stdout, /^adopted generation=3 /m)
  })
})
