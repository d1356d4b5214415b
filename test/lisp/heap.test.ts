/**
 * The bundled Lisp's heap: the collector under pressure, mark bits kept out of the objects
 * (checked by the kernel: a collection with every page of cells read-only), and the
 * examples/world.lisp program against an independent model of its generator.
 */
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {buildFixture, REPO, run, type Built} from './build-runtime.js'

const WORLD = join(REPO, 'fixtures/lisp/examples/world.lisp')

/** The world's generator re-done in TypeScript: total population and region sizes of n cities. */
function modelWorld(n: number): {population: bigint; regions: Map<number, number>} {
  let seed = 12345n
  const rand = (k: bigint): bigint => {
    seed = (seed * 1103515245n + 12345n) % 2147483648n
    return (seed / 65536n) % k
  }
  let population = 0n
  const regions = new Map<number, number>()
  for (let id = 0; id < n; id++) {
    population += 1000n + rand(1000000n) // population
    rand(10000n); rand(10000n) // position
    if (id > 0) { rand(BigInt(id)); rand(BigInt(id)); rand(BigInt(id)) } // neighbours
    regions.set(id % 97, (regions.get(id % 97) ?? 0) + 1)
  }
  return {population, regions}
}

describe('bundled Lisp: heap and collector', function () {
  let b: Built
  before(function () {
    this.timeout(120_000)
    b = buildFixture('lisp', 'lisp')
  })
  after(() => b?.cleanup())

  it('collects garbage under pressure and keeps live data intact', () => {
    // Live: 20,000 records in a hash table. Garbage: 2,000 reversed copies of a 10,000-element
    // list (20 M cells, 640 MB if nothing were reclaimed).
    const prog = `(begin
      (define keep (make-hash-table))
      (define (rec i) (list i (number->string i) (* i 0.5) (cons 'k i)))
      (do ((i 0 (+ i 1))) ((= i 20000)) (hash-set! keep i (rec i)))
      (define ten-k (iota 10000))
      (do ((i 0 (+ i 1))) ((= i 2000)) (reverse ten-k))
      (define bad 0)
      (do ((i 0 (+ i 1))) ((= i 20000)) (unless (equal? (hash-ref keep i) (rec i)) (set! bad (+ bad 1))))
      (list bad (hash-count keep) (hash-ref keep 12345)
            (assoc-ref (heap-stats) 'gc-count) (assoc-ref (heap-stats) 'heap-bytes)))`
    const r = run(b.exe, ['-p', prog])
    assert.equal(r.status, 0, r.stderr)
    const m = /^\(0 20000 \(12345 "12345" 6172\.5 \(k \. 12345\)\) (\d+) (\d+)\)$/.exec(r.stdout.trim())
    assert.ok(m, r.stdout)
    assert.ok(Number(m[1]) >= 10, `only ${m[1]} collections`)
    assert.ok(Number(m[2]) < 64 << 20, `heap grew to ${m[2]} bytes`)
  })

  it('collects with every page of objects read-only (mark bits live outside the objects)', () => {
    const r = run(b.exe, [WORLD, '-e', '(build-world 3000)', '-e', '(define garbage (iota 100000))',
      '-e', '(set! garbage #f)', '-p', '(list (> (gc-readonly-check) 100000) (gc-readonly-check) (world-checksum))',
      '-p', '(world-checksum)'])
    assert.equal(r.status, 0, r.stderr)
    const lines = r.stdout.trim().split('\n')
    const [ok, live, sum] = lines[0].slice(1, -1).split(' ')
    assert.equal(ok, '#t')
    assert.ok(Number(live) > 100000)
    assert.equal(lines[1], sum)
    // The check can fail: a deliberate write to a protected cell kills the process.
    const probe = run(b.exe, ['-e', '(gc-readonly-check #t)'])
    assert.equal(probe.status, null)
  })

  it('runs examples/world.lisp: thousands of generated definitions, answers match a model', function () {
    this.timeout(60_000)
    const n = 4000
    const r = run(b.exe, [WORLD, '-e', `(build-world ${n})`, '-p', '(total-population)',
      '-p', '(map cdr (region-sizes))', '-p', '(length (filter (lambda (k) (procedure? (eval (rule-name k)))) (iota *rule-count*)))',
      '-p', '(rule-1234 10)', '-p', '(world-summary)'])
    assert.equal(r.status, 0, r.stderr)
    const [pop, sizes, rules, rule1234, summary] = r.stdout.trim().split('\n')
    const model = modelWorld(n)
    assert.equal(pop, String(model.population))
    // region-sizes is sorted by name: region-0, region-1, region-10, ...
    const names = [...model.regions.keys()].sort((a, c) => `region-${a}` < `region-${c}` ? -1 : 1)
    assert.equal(sizes, `(${names.map((k) => model.regions.get(k)).join(' ')})`)
    assert.equal(rules, '3000')
    assert.equal(rule1234, String(10 % 2 === 0 ? 10 + 1234 : 10 - Math.floor(1234 / 3))) // 1234 mod 4 = 2
    // Same program, same answers: deterministic across processes.
    const again = run(b.exe, [WORLD, '-e', `(build-world ${n})`, '-p', '(world-summary)'])
    assert.equal(again.stdout.trim(), summary)
  })

  it('reports the image generation and a clear save error when saving is impossible', function () {
    const r = run(b.exe, ['-p', '(image-generation)', '-p',
      `(guard (e e) (save-image "${join(b.dir, 'no-such-dir', 'img')}" 'exit))`, '-p', '(guard (e e) (save-image "x" (quote sideways)))'])
    assert.equal(r.status, 0, r.stderr)
    const [gen, err, bad] = r.stdout.trim().split('\n')
    assert.equal(gen, '0')
    assert.match(err, /^"save-image: /)
    if (b.standin) assert.match(err, /planner/)
    assert.equal(bad, `"save-image: mode must be 'continue, 'exec or 'exit"`)
  })
})
