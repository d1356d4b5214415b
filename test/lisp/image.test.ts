/**
 * The bundled Lisp saved and restored through libimgdump: the same queries give the same
 * answers in the restored process, generations count up, 'exec resumes the pending work,
 * error recovery and the collector work in a restored image. Skipped while
 * native/build/libimgdump.a lacks imgdump_save (the Lisp is then linked to the stand-in).
 */
import assert from 'node:assert/strict'
import {existsSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {buildFixture, REPO, run, saveFromOutside, type Built} from './build-runtime.js'

const WORLD = join(REPO, 'fixtures/lisp/examples/world.lisp')
const QUERIES = ['-p', '(world-summary)', '-p', '(city-by-name "city-777")', '-p', '(walk 2999 5)', '-p', 'marker']

describe('bundled Lisp: save and restore', function () {
  this.timeout(120_000)
  let b: Built
  const env = {...process.env, IMGDUMP_CLI: join(REPO, 'bin/run.js')}
  before(function () {
    b = buildFixture('lisp', 'lisp')
    if (b.standin) this.skip()
  })
  after(() => b?.cleanup())

  it("'exit saves a world that answers the same queries after restore", () => {
    const img = join(b.dir, 'world-1')
    const fresh = run(b.exe, [WORLD, '-e', '(build-world 3000)', '-e', '(define marker (list "before" 1.5))', ...QUERIES], {env})
    assert.equal(fresh.status, 0, fresh.stderr)
    const save = run(b.exe, [WORLD, '-e', '(build-world 3000)', '-e', '(define marker (list "before" 1.5))',
      '-e', `(save-image "${img}" 'exit)`, '-p', '"not reached"'], {env})
    assert.equal(save.status, 0, save.stderr)
    assert.equal(save.stdout, '')
    assert.ok(existsSync(img) && (statSync(img).mode & 0o111) !== 0)
    const restored = run(img, [...QUERIES, '-p', '(image-generation)'], {env})
    assert.equal(restored.status, 0, restored.stderr)
    assert.equal(restored.stdout, fresh.stdout + '1\n')
  })

  it('the session loop: 20 saves over the file the process runs from keep every definition', () => {
    const img = join(b.dir, 'loop.img')
    // Generation by generation: define x_i, save over the image; 'continue, then 'exec, then 'exit and restart.
    const step = (exe: string, from: number, to: number, last: 'continue' | 'exec' | 'exit') => {
      const args: string[] = []
      for (let i = from; i < to; i++) {
        args.push('-e', `(define x${i} (list ${i} "v${i}"))`, '-e', `(save-image "${img}" '${i === to - 1 ? last : i % 2 ? 'exec' : 'continue'})`)
      }
      const r = run(exe, args, {env})
      assert.equal(r.status, 0, `saving generations ${from}..${to - 1}: ${r.stderr}`)
    }
    step(b.exe, 0, 5, 'exit')
    step(img, 5, 12, 'continue')
    step(img, 12, 20, 'exit')
    const all = Array.from({length: 20}, (_, i) => `x${i}`).join(' ')
    const r = run(img, ['-p', `(list ${all})`, '-p', '(image-generation)'], {env})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, `(${Array.from({length: 20}, (_, i) => `(${i} "v${i}")`).join(' ')})\n20\n`)
  })

  it("'continue keeps running; the image starts at generation 1 with its own arguments", () => {
    const img = join(b.dir, 'cont-1')
    const r = run(b.exe, ['-e', '(define n 10)', '-p', `(save-image "${img}" 'continue)`, '-p', '(list n (image-generation))'], {env})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, '#t\n(10 0)\n')
    const again = run(img, ['-p', '(list n (image-generation))'], {env})
    assert.equal(again.stdout, '(10 1)\n', again.stderr)
  })

  it("'exec resumes the pending command line in the new image; generation 2 from there", () => {
    const img1 = join(b.dir, 'exec-1')
    const img2 = join(b.dir, 'exec-2')
    const t0 = process.hrtime.bigint()
    const r = run(b.exe, ['-e', '(define n 1)', '-e', '(define t0 (clock-ms))', '-e', `(save-image "${img1}" 'exec)`,
      '-p', '(list n (image-generation))', '-p', '(- (clock-ms) t0)'], {env})
    const wallMs = Number(process.hrtime.bigint() - t0) / 1e6
    assert.equal(r.status, 0, r.stderr)
    const [listed, elapsed] = r.stdout.trim().split('\n')
    assert.equal(listed, '(1 1)')
    // (clock-ms) is one clock across the exec: the elapsed time is positive and within the run.
    assert.ok(Number(elapsed) > 0 && Number(elapsed) < wallMs, `elapsed ${elapsed} ms, run ${wallMs} ms`)
    const r2 = run(img1, ['-e', '(set! n 2)', '-e', `(save-image "${img2}" 'exit)`], {env})
    assert.equal(r2.status, 0, r2.stderr)
    const r3 = run(img2, ['-p', '(list n (image-generation))'], {env})
    assert.equal(r3.stdout, '(2 2)\n', r3.stderr)
    // The first image is unchanged by the second save.
    assert.equal(run(img1, ['-p', 'n'], {env}).stdout, '1\n')
  })

  it("'exec from the REPL: the new image reads the rest of stdin", () => {
    const img = join(b.dir, 'repl-exec')
    const input = `(define a 1)\n(save-image "${img}" 'exec)\n(list a (image-generation))\n(car 5)\n(+ a 1)\n`
    const r = run(b.exe, [], {env, input})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, '(1 1)\n2\n')
    assert.match(r.stderr, /error: car: not a pair: 5/)
  })

  it('saves from outside (imgdump run + imgdump save) at a safe point inside a long evaluation', async () => {
    const name = `lisp-test-${process.pid}`
    const prog = join(b.dir, 'spin.lisp')
    // The loop never ends by itself: only a save with --exit stops it.
    writeFileSync(prog, '(define x (list "kept" 42))\n(define (spin i) (spin (+ i 1)))\n(spin 0)\n')
    const img = join(b.dir, 'outside-1')
    const {saved, exitStatus, stderr} = await saveFromOutside(b.exe, [prog], name, img, env)
    assert.equal(saved.status, 0, saved.stderr + saved.stdout)
    assert.equal(exitStatus, 0, stderr)
    const r = run(img, ['-p', 'x', '-p', '(image-generation)'], {env})
    assert.equal(r.stdout, '("kept" 42)\n1\n', r.stderr)
  })

  it('recovers from errors and collects garbage in a restored image', () => {
    const img = join(b.dir, 'repl-1')
    const save = run(b.exe, [WORLD, '-e', '(build-world 2000)', '-e', `(save-image "${img}" 'exit)`], {env})
    assert.equal(save.status, 0, save.stderr)
    const before = run(b.exe, [WORLD, '-e', '(build-world 2000)', '-p', '(world-checksum)'], {env}).stdout
    const r = run(img, [], {env, input: '(car 1)\n(define junk (iota 200000))\n(set! junk #f)\n(> (gc) 0)\n(gc-readonly-check)\n(guard (e "caught") (error "x"))\n(world-checksum)\n'})
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stderr, /error: car: not a pair: 1/)
    const lines = r.stdout.trim().split('\n')
    assert.equal(lines[0], '#t')
    assert.equal(lines[2], '"caught"')
    assert.equal(lines[3] + '\n', before)
  })
})
