/**
 * Jim Tcl (Debian libjim, unmodified) in the fixtures/jim host: the interpreter works in the
 * host, and its procs, variables, dicts and namespaces survive a save and restore with
 * libimgdump, with the per-process parts (random seed, ::env) renewed. The save/restore
 * cases are skipped while native/build/libimgdump.a lacks imgdump_save.
 */
import assert from 'node:assert/strict'
import {existsSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {buildFixture, REPO, run, saveFromOutside, type Built} from '../lisp/build-runtime.js'

const DEFINE = [
  '-e', 'proc fib {n} {if {$n < 2} {return $n}; expr {[fib [expr {$n-1}]] + [fib [expr {$n-2}]]}}',
  '-e', 'set counter 41; set greeting "hello, world"',
  '-e', 'set inventory [dict create apples 3 pears 5]; dict set inventory plums 7',
  '-e', 'namespace eval bank { variable balance 100; proc deposit {n} { variable balance; incr balance $n } }',
  '-e', 'set biglist {}; for {set i 0} {$i < 20000} {incr i} { lappend biglist [expr {$i * 3}] }',
].map((a) => (a === '-e' ? a : `${a}; list`)) // `list` makes the result empty: nothing printed
const QUERY = [
  '-e', 'fib 20', '-e', 'incr counter', '-e', 'string toupper $greeting',
  '-e', 'dict get $inventory plums', '-e', 'lsort [dict keys $inventory]',
  '-e', 'bank::deposit 5', '-e', 'set bank::balance', '-e', 'llength $biglist', '-e', 'lindex $biglist 12345',
]
// Computed here, independently of Tcl.
const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2))
const EXPECTED = [String(fib(20)), '42', 'HELLO, WORLD', '7', 'apples pears plums', '105', '105', '20000', String(12345 * 3)]

describe('Jim Tcl host', function () {
  this.timeout(120_000)
  let b: Built
  const env = {...process.env, IMGDUMP_CLI: join(REPO, 'bin/run.js')}
  before(() => { b = buildFixture('jim', 'jimhost') })
  after(() => b?.cleanup())

  function results(stdout: string): string[] {
    return stdout.trim().split('\n')
  }

  it('runs procs, variables, dicts and a namespace', () => {
    const r = run(b.exe, [...DEFINE, ...QUERY], {env})
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(results(r.stdout), EXPECTED)
  })

  it('reads multi-line commands from stdin and recovers from errors', () => {
    const input = 'proc add {a b} {\n  expr {$a + $b}\n}\nadd 2 3\nnosuchcmd\nerror "boom"\nadd 40 2\n'
    const r = run(b.exe, [], {env, input})
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['add', '5', '42'])
    assert.match(r.stderr, /invalid command name "nosuchcmd"/)
    assert.match(r.stderr, /boom/)
  })

  it('sources files, stops at the first error, and reports image generation 0', () => {
    writeFileSync(join(b.dir, 'lib.tcl'), 'proc triple {x} {expr {3*$x}}\nset loaded yes\n')
    const r = run(b.exe, [join(b.dir, 'lib.tcl'), '-e', 'triple $loaded-1', '-e', 'list [triple 14] [image generation]'], {env})
    assert.equal(r.status, 1)
    assert.match(r.stderr, /expected .*number but got "yes-1"/)
    const ok = run(b.exe, [join(b.dir, 'lib.tcl'), '-e', 'list [triple 14] [image generation]'], {env})
    assert.equal(ok.stdout.trim(), '42 0', ok.stderr)
  })

  it('refuses bad modes and open channels before saving', () => {
    const r = run(b.exe, ['-e', `catch {image save ${join(b.dir, 'x')} sideways} m; set m`,
      '-e', `set f [open ${join(b.dir, 'data.txt')} w]; catch {image save ${join(b.dir, 'x')} exit} m; set m`], {env})
    assert.equal(r.status, 0, r.stderr)
    const lines = r.stdout.trim().split('\n')
    assert.match(lines[0], /bad mode "sideways"/)
    assert.match(lines[1], /close these channels first.*aio\.handle/)
    assert.equal(existsSync(join(b.dir, 'x')), false)
  })

  describe('save and restore', function () {
    before(function () { if (b.standin) this.skip() })

    it('procs, variables, dicts and a namespace behave identically after restore', () => {
      const img = join(b.dir, 'tcl-1')
      const save = run(b.exe, [...DEFINE, '-e', `image save ${img} exit`, '-e', 'puts "not reached"'], {env})
      assert.equal(save.status, 0, save.stderr)
      assert.equal(existsSync(img), true)
      for (let i = 0; i < 2; i++) { // twice: the image is not changed by running it
        const r = run(img, [...QUERY, '-e', 'image generation', '-e', 'stdout puts via-channel'], {env})
        assert.equal(r.status, 0, r.stderr)
        assert.deepEqual(results(r.stdout), [...EXPECTED, '1', 'via-channel'])
      }
    })

    it('renews per-process state: random seed and ::env', () => {
      const img = join(b.dir, 'tcl-env')
      const save = run(b.exe, ['-e', 'expr {srand(7)}', '-e', 'set ::env(IMGDUMP_JIM_T) saved', '-e', `image save ${img} exit`], {env})
      assert.equal(save.status, 0, save.stderr)
      const q = ['-e', 'expr {rand()}', '-e', 'set ::env(IMGDUMP_JIM_T)']
      const a = run(img, q, {env: {...env, IMGDUMP_JIM_T: 'run-a'}})
      const c = run(img, q, {env: {...env, IMGDUMP_JIM_T: 'run-b'}})
      assert.equal(a.status, 0, a.stderr)
      const [ra, ea] = a.stdout.trim().split('\n')
      const [rc, ec] = c.stdout.trim().split('\n')
      assert.equal(ea, 'run-a')
      assert.equal(ec, 'run-b')
      assert.notEqual(ra, rc)
    })

    it('re-installs the signal dispositions Tcl had set (kept by libjim and the kernel, not the heap)', () => {
      const img = join(b.dir, 'tcl-signal')
      const save = run(b.exe, ['-e', 'signal handle SIGUSR1', '-e', 'signal ignore SIGUSR2', '-e', `image save ${img} exit`], {env})
      assert.equal(save.status, 0, save.stderr)
      const r = run(img, ['-e', 'list [signal handle] [signal ignore]',
        '-e', 'list [catch -signal {kill SIGUSR1 [pid]; sleep 0.1} m] $m',
        '-e', 'kill SIGUSR2 [pid]; sleep 0.1; list [signal check] alive'], {env})
      assert.equal(r.status, 0, r.stderr)
      // 5 = JIM_SIGNAL: the handled signal became a catchable Tcl condition.
      assert.deepEqual(r.stdout.trim().split('\n'), ['SIGUSR1 SIGUSR2', '5 SIGUSR1', 'SIGUSR2 alive'])
    })

    it('saves from outside (imgdump run + imgdump save) at `image safepoint` in a running script', async () => {
      const name = `jim-test-${process.pid}`
      const script = join(b.dir, 'loop.tcl')
      writeFileSync(script, 'set kept [dict create a 1 b 2]\nproc twice {x} {expr {2*$x}}\nwhile 1 { image safepoint; after 5 }\n')
      const img = join(b.dir, 'tcl-outside')
      const {saved, exitStatus, stderr} = await saveFromOutside(b.exe, [script], name, img, env)
      assert.equal(saved.status, 0, saved.stderr + saved.stdout)
      assert.equal(exitStatus, 0, stderr)
      const r = run(img, ['-e', 'list [dict get $kept b] [twice 21] [image generation]'], {env})
      assert.equal(r.stdout.trim(), '2 42 1', r.stderr)
    })

    it('exec from stdin: the new image reads the rest of the input', () => {
      const img = join(b.dir, 'tcl-stdin-exec')
      const r = run(b.exe, [], {env, input: `set a 1\nimage save ${img} exec\nlist $a [image generation]\nincr a\n`})
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout, '1\n1 1\n2\n')
    })

    it('exec resumes the pending work in the new image; generation 2 from there', () => {
      const img1 = join(b.dir, 'tcl-exec-1')
      const img2 = join(b.dir, 'tcl-exec-2')
      const r = run(b.exe, ['-e', 'set n 1', '-e', `image save ${img1} exec`, '-e', 'list $n [image generation]'], {env})
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout.trim().split('\n').at(-1), '1 1')
      const r2 = run(img1, ['-e', 'incr n', '-e', `image save ${img2} exit`], {env})
      assert.equal(r2.status, 0, r2.stderr)
      assert.equal(run(img2, ['-e', 'list $n [image generation]'], {env}).stdout.trim(), '2 2')
    })
  })
})
