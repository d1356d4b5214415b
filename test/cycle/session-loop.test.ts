/**
 * The session loop (issue: save the same image again and again, incrementally): generation
 * after generation saved over one path with CONTINUE, EXEC and EXIT, standalone and under
 * `imgdump run`, full and incremental, also after the executable or the image was replaced
 * or deleted on disk. After every save, the image run by the kernel shows memory identical
 * to what the saving process had (digests over heap, .data, .bss, a region and an object
 * realloc moved), and `imgdump verify` passes. libimgdump's report line (IMGDUMP_REPORT=1)
 * says which tracking ran; the digests are what judges the copies it made.
 */
import assert from 'node:assert/strict'
import {spawn, spawnSync, type ChildProcessWithoutNullStreams} from 'node:child_process'
import {copyFileSync, existsSync, readdirSync, renameSync, rmSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {CLI, buildKv, runKv, tempDir} from './kv-harness.js'

/** A runtime driven one command at a time (stdin unbuffered in kv, so EXEC keeps the rest). */
class Driven {
  private out = ''
  private err = ''
  readonly proc: ChildProcessWithoutNullStreams
  private exited: Promise<number | null>

  constructor(argv: string[], env: NodeJS.ProcessEnv, cwd: string) {
    this.proc = spawn(argv[0], argv.slice(1), {env, cwd})
    this.proc.stdout.on('data', (c: Buffer) => { this.out += c.toString() })
    this.proc.stderr.on('data', (c: Buffer) => { this.err += c.toString() })
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)))
  }

  get stderr(): string { return this.err }

  /** Send a command and wait for a stdout line matching `until`; returns that line. */
  async ask(cmd: string, until: RegExp, timeoutMs = 30_000): Promise<string> {
    const from = this.out.length
    this.proc.stdin.write(cmd + '\n')
    const deadline = Date.now() + timeoutMs // a hang guard, not a speed assertion
    for (;;) {
      const lines = this.out.slice(from).split('\n').slice(0, -1)
      const hit = lines.find((l) => until.test(l))
      if (hit) return hit
      if (this.proc.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no answer matching ${until} to "${cmd}"; stdout:\n${this.out.slice(-2000)}\nstderr:\n${this.err.slice(-2000)}`)
      }
      await new Promise((r) => setTimeout(r, 5))
    }
  }

  async waitExit(): Promise<number | null> {
    return this.exited
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL')
  }
}

const MODES = ['continue', 'exec', 'continue', 'exit', 'continue'] as const

function restoredDigest(image: string): string {
  const r = runKv(image, ['digest', 'exit 0'])
  assert.equal(r.status, 0, `${image} did not run: ${r.stderr}`)
  const line = r.stdout.split('\n').find((l) => l.startsWith('digest:'))
  assert.ok(line, `no digest from ${image}: ${r.stdout}`)
  return line
}

function verify(image: string): void {
  const r = spawnSync(process.execPath, [CLI, 'verify', image], {encoding: 'utf8', timeout: 120_000})
  assert.equal(r.status, 0, `verify ${image}: ${r.stdout}${r.stderr}`)
}

function reports(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('imgdump: save generation'))
}

interface LoopOptions {
  dir: string
  start: string[]
  generations: number
  /** Wrap a runtime command line (e.g. in `imgdump run --`). */
  wrap?: (argv: string[]) => string[]
  verifyEvery?: number
}

/**
 * Run `generations` saves over dir/s.img, rotating modes; a new process (from the image) after
 * every EXIT, alternating full (IMGDUMP_INCREMENTAL=0) and incremental processes.
 */
async function sessionLoop(o: LoopOptions): Promise<string[]> {
  const image = join(o.dir, 's.img')
  const wrap = o.wrap ?? ((a: string[]) => a)
  const all: string[] = []
  let incremental = true
  let argv = o.start
  let gen = 0
  while (gen < o.generations) {
    const env: NodeJS.ProcessEnv = {...process.env, IMGDUMP_CLI: CLI, IMGDUMP_REPORT: '1', IMGDUMP_SYNC: '0',
      IMGDUMP_INCREMENTAL: incremental ? '1' : '0'}
    delete env.IMGDUMP_CONTROL_FD
    const rt = new Driven(wrap(argv), env, o.dir)
    try {
      if (argv === o.start) { // later processes are restored with both
        await rt.ask('blob 16', /^blob /)
        await rt.ask('region', /^region/)
      }
      for (;;) {
        const mode = MODES[gen % MODES.length]
        gen++
        await rt.ask(`scribble 60 ${gen}`, /^scribbled/)
        const before = await rt.ask('digest', /^digest:/)
        if (mode === 'exit') {
          rt.proc.stdin.write(`save ${image} exit\n`)
          assert.equal(await rt.waitExit(), 0, `EXIT save of generation ${gen} failed: ${rt.stderr}`)
        } else if (mode === 'exec') {
          // Replaced by the new image (same PID), which reads on from the same stdin.
          rt.proc.stdin.write(`save ${image} exec\n`)
          assert.equal(await rt.ask('digest', /^digest:|^save: /), before, `generation ${gen}: the EXEC image differs`)
        } else {
          const saved = await rt.ask(`save ${image} ${mode}`, /^save: /)
          assert.equal(saved, 'save: 0 ok', `generation ${gen} (${mode})`)
        }
        assert.equal(restoredDigest(image), before, `generation ${gen} (${mode}): restored memory differs`)
        if (gen % (o.verifyEvery ?? 1) === 0 || gen === o.generations) verify(image)
        if (mode === 'exit' || gen >= o.generations) break
      }
    } finally {
      if (rt.proc.exitCode === null) {
        rt.proc.stdin.write('exit 0\n')
        await Promise.race([rt.waitExit(), new Promise((r) => setTimeout(r, 5000))])
        rt.kill()
      }
      all.push(...reports(rt.stderr))
    }
    argv = [image]
    incremental = !incremental
  }
  return all
}

describe('session loop: one image path, generation after generation', function () {
  this.timeout(600_000)
  let bin: string
  let dir: string

  before(() => {
    bin = buildKv()
  })
  beforeEach(() => {
    dir = tempDir('imgdump-loop-')
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))
  after(() => rmSync(bin, {recursive: true, force: true}))

  it('20 generations standalone: every restore shows the saved memory, verify passes, saves are incremental', async () => {
    const lines = await sessionLoop({dir, start: [join(bin, 'kv-pie')], generations: 20})
    assert.equal(lines.length, 20, lines.join('\n'))
    const fromPrev = (l: string) => Number(/, (\d+) from the previous image/.exec(l)![1])
    // Incremental processes build on the previous image by both methods; full ones never do.
    assert.ok(lines.some((l) => l.includes('tracking uffd') && fromPrev(l) > 0), lines.join('\n'))
    assert.ok(lines.some((l) => l.includes('tracking pagemap') && fromPrev(l) > 0), lines.join('\n'))
    assert.ok(lines.some((l) => l.includes('tracking none') && l.includes('IMGDUMP_INCREMENTAL=0')), lines.join('\n'))
    for (const l of lines.filter((x) => x.includes('tracking none'))) assert.equal(fromPrev(l), 0, l)
    assert.deepEqual(readdirSync(dir).sort(), ['s.img'], 'no temporary file left')
    // The manifest records how the last save knew its written pages, per segment.
    const ins = spawnSync(process.execPath, [CLI, 'inspect', '--json', join(dir, 's.img')], {encoding: 'utf8'})
    assert.equal(ins.status, 0, ins.stderr)
    const segs = JSON.parse(ins.stdout).segments as {role: string; tracking?: string; pagesWritten?: number; fileSize: string}[]
    const memory = segs.filter((x) => x.role !== 'reservation')
    assert.ok(memory.length >= 3 && memory.every((x) => x.tracking && typeof x.pagesWritten === 'number'), ins.stdout)
    const heap = memory.find((x) => x.role === 'heap')!
    assert.ok(heap.pagesWritten! * 4096 <= Number(BigInt(heap.fileSize)) + 4096, JSON.stringify(heap))
  })

  it('20 generations under imgdump run', async () => {
    const lines = await sessionLoop({dir, start: [join(bin, 'kv-nopie')], generations: 20, verifyEvery: 5,
      wrap: (argv) => [process.execPath, CLI, 'run', '--', ...argv]})
    assert.equal(lines.length, 20, lines.join('\n'))
    assert.ok(lines.some((l) => /tracking (uffd|pagemap)/.test(l) && !/ 0 from the previous/.test(l)), lines.join('\n'))
  })

  it('saves keep working after the executable is deleted, then replaced, while it runs', async () => {
    const exe = join(dir, 'rt')
    copyFileSync(join(bin, 'kv-pie'), exe)
    const env: NodeJS.ProcessEnv = {...process.env, IMGDUMP_CLI: CLI, IMGDUMP_REPORT: '1', IMGDUMP_SYNC: '0'}
    delete env.IMGDUMP_CONTROL_FD
    const rt = new Driven([exe], env, dir)
    try {
      await rt.ask('blob 8', /^blob /)
      await rt.ask('scribble 40 1', /^scribbled/)
      rmSync(exe) // deleted while it runs
      let before = await rt.ask('digest', /^digest:/)
      assert.equal(await rt.ask(`save ${join(dir, 'a.img')} continue`, /^save: /), 'save: 0 ok')
      assert.equal(restoredDigest(join(dir, 'a.img')), before)
      copyFileSync(join(bin, 'kv-nopie'), exe) // another program under the old name
      await rt.ask('scribble 40 2', /^scribbled/)
      before = await rt.ask('digest', /^digest:/)
      rt.proc.stdin.write(`save ${join(dir, 'a.img')} exec\n`)
      assert.equal(await rt.ask('digest', /^digest:|^save: /), before, 'the EXEC image continues with the same memory')
      // Now running from a.img: replace the image on disk by another file, then save over it again.
      copyFileSync(join(bin, 'kv-nopie'), join(dir, 'a.img.new'))
      renameSync(join(dir, 'a.img.new'), join(dir, 'a.img'))
      await rt.ask('scribble 40 3', /^scribbled/)
      before = await rt.ask('digest', /^digest:/)
      assert.equal(await rt.ask(`save ${join(dir, 'a.img')} continue`, /^save: /), 'save: 0 ok')
      assert.equal(restoredDigest(join(dir, 'a.img')), before)
      verify(join(dir, 'a.img'))
      const lines = reports(rt.stderr)
      assert.match(lines.at(-1)!, /tracking (pagemap|uffd), \d+ pages written, [1-9]\d* from the previous image/, lines.join('\n'))
    } finally {
      rt.kill()
    }
  })

  it('a forked child\'s writes do not count as the parent\'s, and nothing written means (almost) nothing rewritten', async () => {
    const env: NodeJS.ProcessEnv = {...process.env, IMGDUMP_CLI: CLI, IMGDUMP_REPORT: '1', IMGDUMP_SYNC: '0'}
    delete env.IMGDUMP_CONTROL_FD
    const rt = new Driven([join(bin, 'kv-pie')], env, dir)
    const img = join(dir, 'c.img')
    try {
      await rt.ask('blob 32', /^blob /)
      assert.equal(await rt.ask(`save ${img} continue`, /^save: /), 'save: 0 ok')
      await rt.ask('child-writes 2000', /^child wrote/)
      const before = await rt.ask('digest', /^digest:/)
      assert.equal(await rt.ask(`save ${img} continue`, /^save: /), 'save: 0 ok')
      assert.equal(restoredDigest(img), before)
      const last = reports(rt.stderr).at(-1)!
      const written = Number(/, (\d+) pages written/.exec(last)![1])
      assert.match(last, /tracking uffd/)
      // The heap header page and the library's process-local page are always rewritten; the
      // child's 2000 page writes (blob and .data) must not show up.
      assert.ok(written < 64, last)
    } finally {
      rt.kill()
    }
  })

  it('all-zero pages are holes in the image: disk blocks near the live data, the restore reads zeros', async () => {
    const img = join(dir, 'z.img')
    const r = runKv(join(bin, 'kv-pie'), ['zeros 256', 'blob 8', 'scribble 30 1', 'digest', `save ${img} exit`],
      {env: {IMGDUMP_REPORT: '1'}})
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /^zeros 268435456 ok$/m)
    const holes = Number(/, (\d+) zero pages left as holes/.exec(r.stderr)?.[1])
    assert.ok(holes >= 65536, r.stderr)
    const st = statSync(img)
    assert.ok(st.size > 256 << 20, `apparent size ${st.size}`)
    assert.ok(st.blocks * 512 < 48 << 20, `${st.blocks * 512} bytes allocated for a ${st.size}-byte image (du must show the holes)`)
    const before = r.stdout.split('\n').find((l) => l.startsWith('digest:'))
    assert.equal(restoredDigest(img), before)
    verify(img)
  })

  it('the saved file is never a partial one: a failed save leaves the previous generation', async () => {
    const env: NodeJS.ProcessEnv = {...process.env, IMGDUMP_CLI: CLI, IMGDUMP_SYNC: '0'}
    delete env.IMGDUMP_CONTROL_FD
    const img = join(dir, 'f.img')
    const rt = new Driven([join(bin, 'kv-pie')], env, dir)
    try {
      await rt.ask('blob 8', /^blob /)
      await rt.ask('scribble 30 1', /^scribbled/)
      const before = await rt.ask('digest', /^digest:/)
      assert.equal(await rt.ask(`save ${img} continue`, /^save: /), 'save: 0 ok')
      await rt.ask('scribble 30 2', /^scribbled/)
      assert.notEqual(await rt.ask(`save ${join(dir, 'missing', 'x.img')} continue`, /^save: /), 'save: 0 ok')
      assert.equal(restoredDigest(img), before, 'the previous generation is untouched')
      // After a failed save the next one is still right (tracking fell back to a full save).
      const now = await rt.ask('digest', /^digest:/)
      assert.equal(await rt.ask(`save ${img} continue`, /^save: /), 'save: 0 ok')
      assert.equal(restoredDigest(img), now)
      assert.ok(!existsSync(join(dir, 'missing')))
    } finally {
      rt.kill()
    }
  })
})
