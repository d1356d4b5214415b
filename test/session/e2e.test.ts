/**
 * The session side end to end with the real libimgdump and the real image side: the kv
 * test runtime (fixtures/kv) saved through `imgdump plan-save` (standalone) and through
 * `imgdump run` + `imgdump save`, and images started with `imgdump restore`. Oracles: the
 * kernel running the images (state printed by the restored process), /proc for PIDs and
 * executables, the file system for atomicity.
 */
import assert from 'node:assert/strict'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {buildKv, rebuildKvx} from '../cycle/kv-harness.js'
import {cleanupTemp, cliAsync, cliPath, tempDir, type Ran} from './helpers.js'


function runWith(cmd: string, args: string[], input: string, env: NodeJS.ProcessEnv = {}): Ran {
  const r = spawnSync(cmd, args, {input, encoding: 'utf8', timeout: 60_000, env: {...process.env, IMGDUMP_CLI: cliPath, ...env}})
  return {status: r.status, stdout: r.stdout, stderr: r.stderr}
}


/** Collects a child's stdout; `next(re)` resolves with the first new line matching. */
function lines(child: ChildProcess): {next: (re: RegExp) => Promise<string>; text: () => string} {
  let text = ''
  let seen = 0
  const waiters: {re: RegExp; resolve: (l: string) => void}[] = []
  const scan = () => {
    const all = text.split('\n').slice(0, -1)
    while (waiters.length && seen < all.length) {
      const l = all[seen++]
      if (waiters[0].re.test(l)) waiters.shift()!.resolve(l)
    }
  }
  child.stdout!.on('data', (d) => { text += d; scan() })
  return {next: (re) => new Promise((resolve) => { waiters.push({re, resolve}); scan() }), text: () => text}
}

/** Children a test started; killed after each test so a failed assertion cannot hang the run. */
const started: ChildProcess[] = []
function track<T extends ChildProcess>(child: T): T {
  started.push(child)
  return child
}

const exitOf = (child: ChildProcess) => new Promise<number | null>((resolve) => {
  if (child.exitCode !== null) resolve(child.exitCode)
  else child.once('exit', (code) => resolve(code))
})

describe('session end to end (libimgdump kv runtime, real image side)', function () {
  let kv: string
  let dir: string
  before(function () {
    kv = buildKv(tempDir())
    dir = tempDir()
  })
  afterEach(function () {
    for (const c of started.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
      c.stdin?.destroy()
    }
  })
  after(cleanupTemp)

  it('standalone: imgdump_save starts `imgdump plan-save`, and the image restores the state', function () {
    const image = path.join(dir, 'standalone.img')
    const r = runWith(path.join(kv, 'kv-pie'), [], ['set a 1', 'fill 300', 'dump', `save ${image}`].join('\n') + '\n')
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /save: 0 ok/)
    const state = r.stdout.split('\n')[0].replace(/ gen=\d+$/, '')
    const back = runWith(image, [], 'dump\nget a\n')
    assert.equal(back.status, 0, back.stderr)
    assert.equal(back.stdout.split('\n')[0], `${state.replace('saves=0', 'saves=1')} gen=1`)
    assert.equal(back.stdout.split('\n')[1], '1')
  })

  it('a planner killed at "planned" leaves the previous image and no temp file; the runtime goes on', function () {
    const image = path.join(dir, 'fault', 'f.img')
    fs.mkdirSync(path.dirname(image))
    assert.equal(runWith(path.join(kv, 'kv-nopie'), [], `set a old\nsave ${image}\n`).status, 0)
    const before = fs.readFileSync(image)
    const r = runWith(path.join(kv, 'kv-nopie'), [], `set a new\nsave ${image}\nget a\n`, {IMGDUMP_FAULT: 'planned'})
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /save: -\d+ /)
    assert.match(r.stdout, /\nnew\n/)
    assert.ok(fs.readFileSync(image).equals(before), 'previous image byte-identical')
    assert.deepEqual(fs.readdirSync(path.dirname(image)), ['f.img'])
  })

  it('run + save: continue, then --exec (same PID, now the image), then --exit', async function () {
    const env = {XDG_RUNTIME_DIR: tempDir(), IMGDUMP_FAULT: ''}
    const orch = track(spawn(process.execPath, [cliPath, 'run', '--name', 'e2e', '--', path.join(kv, 'kv-pie')],
      {env: {...process.env, ...env}, stdio: ['pipe', 'pipe', 'inherit']}))
    const out = lines(orch)
    // `serve N` calls imgdump_safepoint() every 10 ms (N bounds how long it waits for us).
    orch.stdin!.write('set a 1\nfill 200\ncount\nserve 6000\n')
    await out.next(/^201$/)
    const img1 = path.join(dir, 'run-1.img')
    const s1 = await cliAsync(['save', 'e2e', '-o', img1, '--json'], env)
    assert.equal(s1.status, 0, s1.stderr + s1.stdout)
    const j1 = JSON.parse(s1.stdout)
    assert.equal(j1.bytes, fs.statSync(img1).size)
    assert.ok(j1.pages > 0 && j1.ms > 0 && j1.mbPerSecond > 0, s1.stdout)
    const pid = j1.pid
    assert.equal(fs.readlinkSync(`/proc/${pid}/exe`), path.join(kv, 'kv-pie'))

    const img2 = path.join(dir, 'run-2.img')
    const s2 = await cliAsync(['save', 'e2e', '-o', img2, '--exec'], env)
    assert.equal(s2.status, 0, s2.stderr)
    // The second save of the session builds on the first (CONTINUE): most pages come from run-1.img.
    assert.match(s2.stdout, /^saved .*run-2\.img: .* \d+ pages written \(\+\d+ from the previous image, (copied|reflinked); tracking uffd\), .* MB\/s\n$/)
    // main runs again in the image, in the same process: it reads the next commands.
    orch.stdin!.write('gen\nget a\nserve 6000\n')
    const gen2 = Number(await out.next(/^\d+$/))
    assert.ok(gen2 >= 1, `generation after --exec: ${gen2}`)
    assert.equal(await out.next(/^\S+$/), '1')
    assert.equal(fs.readlinkSync(`/proc/${pid}/exe`), img2)
    const listed = JSON.parse((await cliAsync(['sessions', '--json'], env)).stdout).sessions
    assert.equal(listed.length, 1)
    assert.equal(listed[0].pid, pid)
    assert.equal(listed[0].lastSave.path, img2)

    const img3 = path.join(dir, 'run-3.img')
    const s3 = await cliAsync(['save', 'e2e', '-o', img3, '--exit'], env)
    assert.equal(s3.status, 0, s3.stderr)
    assert.equal(await exitOf(orch), 0)
    const back = runWith(img3, [], 'gen\nget a\ncount\n')
    assert.deepEqual(back.stdout.trim().split('\n').slice(0, 3), [String(gen2 + 1), '1', '201'])
    const first = runWith(img1, [], 'gen\ncount\n')
    assert.deepEqual(first.stdout.trim().split('\n').slice(0, 2), ['1', '201'])
  })

  describe('restore', function () {
    let image: string
    before(function () {
      image = path.join(dir, 'restore.img')
      const r = runWith(path.join(kv, 'kv-pie'), [], `set r restored-value\nsave ${image}\n`)
      assert.equal(r.status, 0, r.stderr)
    })

    it('execs the image in the CLI process (same PID, argv[0] = image path, args passed)', async function () {
      const child = track(spawn(process.execPath, [cliPath, 'restore', '--verify', image, '--', 'one', 'two'], {stdio: ['pipe', 'pipe', 'inherit']}))
      const out = lines(child)
      child.stdin!.write('get r\n')
      assert.equal(await out.next(/./), 'restored-value')
      // The kernel's view while it still runs: this PID now executes the image.
      assert.equal(fs.readlinkSync(`/proc/${child.pid}/exe`), image)
      assert.deepEqual(fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').slice(0, -1), [image, 'one', 'two'])
      child.stdin!.write('exit 7\n')
      assert.equal(await exitOf(child), 7)
    })

    it('refuses a file that is not an image (exit 4)', function () {
      const r = runWith(process.execPath, [cliPath, 'restore', '/bin/true'], '')
      assert.equal(r.status, 4)
      assert.match(r.stderr, /not an imgdump image/)
      const text = path.join(dir, 'text.img')
      fs.writeFileSync(text, 'hello\n', {mode: 0o755})
      assert.equal(runWith(process.execPath, [cliPath, 'restore', text], '').status, 4)
      assert.equal(runWith(process.execPath, [cliPath, 'restore', path.join(dir, 'missing.img')], '').status, 3)
    })

    it('--verify refuses an image with a flipped payload byte (exit 7), without running it', function () {
      const bad = path.join(dir, 'bad.img')
      const bytes = fs.readFileSync(image)
      // A byte of saved memory: the largest writable PT_LOAD (readelf's view).
      const loads = spawnSync('readelf', ['-lW', image], {encoding: 'utf8'}).stdout.split('\n')
        .filter((l) => /^\s+LOAD\s/.test(l) && /\sRW\s/.test(l)).map((l) => l.trim().split(/\s+/))
        .map((f) => ({offset: Number(f[1]), vaddr: BigInt(f[2]), filesz: Number(f[4])}))
        .sort((a, b) => b.filesz - a.filesz)
      assert.ok(loads[0].filesz > 200, JSON.stringify(loads, (_k, v) => typeof v === 'bigint' ? v.toString(16) : v))
      bytes[loads[0].offset + 150] ^= 0x40
      fs.writeFileSync(bad, bytes, {mode: 0o700})
      const r = runWith(process.execPath, [cliPath, 'restore', '--verify', bad], 'get r\n')
      assert.equal(r.status, 7, r.stderr)
      assert.match(r.stderr, /CRC32C/)
      assert.equal(r.stdout, '')
    })

    it('refuses an image whose library changed (exit 8, naming it)', function () {
      const own = buildKv(tempDir())
      const img = path.join(dir, 'lib.img')
      assert.equal(runWith(path.join(own, 'kv-nopie'), [], `set a 1\nsave ${img}\n`).status, 0)
      rebuildKvx(own, 'another-version')
      const r = runWith(process.execPath, [cliPath, 'restore', img], 'get a\n')
      assert.equal(r.status, 8, r.stderr)
      assert.match(r.stderr, new RegExp(`${path.join(own, 'libkvx.so')} has changed`))
      assert.equal(r.stdout, '')
    })

    it('reports a denied personality (exit 8)', function () {
      const r = runWith(path.join(kv, 'deny-personality'), [process.execPath, cliPath, 'restore', image], 'get r\n')
      assert.equal(r.status, 8, r.stderr)
      assert.match(r.stderr, /personality/)
      assert.equal(r.stdout, '')
    })
  })
})
