import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buildNative, DEFAULT_BASE, DEFAULT_RESERVE, exitReport, ROOT, run, SO} from './support.js'

const inHeap = (a: bigint) => a >= DEFAULT_BASE && a < DEFAULT_BASE + DEFAULT_RESERVE

/** Run a command with and without the preloaded library: same output, allocations in the heap. */
function compareWithPreload(cmd: string, args: string[], env: Record<string, string> = {}, minMallocs = 100) {
  const plain = run(cmd, args, env)
  assert.equal(plain.status, 0, plain.stderr)
  const pre = run(cmd, args, {...env, LD_PRELOAD: SO, IMGDUMP_DEBUG: '1'})
  assert.equal(pre.status, 0, pre.stderr)
  assert.equal(pre.stdout, plain.stdout, `${cmd}: output differs under the preloaded allocator`)
  const rep = exitReport(pre.stderr)
  assert.ok(rep, `no IMGDUMP_DEBUG exit report from ${cmd}: ${pre.stderr}`)
  assert.equal(rep.base, DEFAULT_BASE)
  assert.ok(rep.mallocs >= minMallocs, `${cmd} made only ${rep.mallocs} allocations through libimgdump`)
  assert.ok(rep.brk > rep.base + 8192n, 'the break moved')
  return {plain, pre, rep}
}

describe('libimgdump replacing malloc in unmodified and linked programs', function () {
  this.timeout(120000)
  let dir: string

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'imgdump-preload-'))
    buildNative()
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('python3 (PYTHONMALLOC=malloc) runs a script correctly; its objects live in the heap', function () {
    // The system interpreter itself, not a version-manager shim script.
    if (!existsSync('/usr/bin/python3')) this.skip()
    const script = join(dir, 'work.py')
    writeFileSync(script, [
      'import json, hashlib',
      'd = {str(i): [i, str(i) * 3, {"k": i}] for i in range(50000)}',
      'e = json.loads(json.dumps(d))',
      'print(hashlib.sha256(json.dumps(e, sort_keys=True).encode()).hexdigest())',
      'import sys',
      'print("ids", hex(id(e)), hex(id(e["123"])), hex(id(object())), file=sys.stderr)',
    ].join('\n'))
    const {pre} = compareWithPreload('/usr/bin/python3', [script], {PYTHONMALLOC: 'malloc'})
    const ids = /^ids (.*)$/m.exec(pre.stderr)?.[1].split(' ').map((s) => BigInt(s))
    assert.ok(ids && ids.length === 3, pre.stderr)
    for (const id of ids) assert.ok(inHeap(id), `python object at 0x${id.toString(16)} is outside the heap`)
  })

  it('sort of a large input gives the same output', () => {
    const input = join(dir, 'big.txt')
    const lines: string[] = []
    let x = 12345
    for (let i = 0; i < 200000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648
      lines.push(`${x.toString(36)} ${i}`)
    }
    writeFileSync(input, lines.join('\n') + '\n')
    // In the C locale sort makes few, large allocations.
    const {rep} = compareWithPreload('sort', [input], {LC_ALL: 'C'}, 5)
    assert.ok(rep.brk - rep.base > 1n << 20n, 'sort buffered its input in the heap')
  })

  it('ls -R /usr gives the same output', () => {
    compareWithPreload('ls', ['-R', '/usr'], {LC_ALL: 'C'})
  })

  for (const mode of ['static', 'shared'] as const) {
    it(`a program that never names malloc, linked with config --cflags --libs${mode === 'shared' ? ' --shared' : ''}`, () => {
      const cfg = run(process.execPath, [join(ROOT, 'bin/run.js'), 'config', '--cflags', '--libs', ...(mode === 'shared' ? ['--shared'] : []), '--json'])
      assert.equal(cfg.status, 0, cfg.stderr)
      const flags = JSON.parse(cfg.stdout) as {cflags: string[]; libs: string[]}
      const exe = join(dir, `no-malloc-${mode}`)
      const cc = run('cc', ['-O1', '-o', exe, join(import.meta.dirname, 'fixtures/no-malloc.c'), ...flags.cflags, ...flags.libs])
      assert.equal(cc.status, 0, cc.stderr)
      const r = run(exe, ['linked'], {IMGDUMP_DEBUG: '1'})
      assert.equal(r.status, 0, r.stderr)
      const m = /^strdup=(0x[0-9a-f]+) file=(0x[0-9a-f]+) heap_mapped=1 text=linked$/m.exec(r.stdout)
      assert.ok(m, r.stdout)
      assert.ok(inHeap(BigInt(m[1])) && inHeap(BigInt(m[2])), `allocations outside the heap: ${r.stdout}`)
      assert.ok(exitReport(r.stderr), r.stderr)
    })
  }

  it('config --pc writes a pkg-config file that pkg-config reads back as the same flags', function () {
    if (run('pkg-config', ['--version']).status !== 0) this.skip()
    const pc = run(process.execPath, [join(ROOT, 'bin/run.js'), 'config', '--pc'])
    assert.equal(pc.status, 0, pc.stderr)
    writeFileSync(join(dir, 'imgdump.pc'), pc.stdout)
    const viaPc = run('pkg-config', ['--cflags', '--libs', 'imgdump'], {PKG_CONFIG_PATH: dir})
    assert.equal(viaPc.status, 0, viaPc.stderr)
    const direct = run(process.execPath, [join(ROOT, 'bin/run.js'), 'config', '--cflags', '--libs'])
    assert.deepEqual(viaPc.stdout.trim().split(/\s+/).sort(), direct.stdout.trim().split(/\s+/).sort())
  })
})
