import assert from 'node:assert/strict'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {runSession, type RunResult} from '../../src/session/orchestrator.js'
import {cleanupTemp, cliAsync, cliPath, peerBinary, peerPattern, STUB_MAGIC, stubImageSide, tempDir} from './helpers.js'

/** Run the CLI (built dist, as users run it) with the test's session directory. */
function cli(args: string[], env: NodeJS.ProcessEnv, input?: string) {
  return spawnSync(process.execPath, [cliPath, ...args], {env: {...process.env, ...env}, input, encoding: 'utf8', timeout: 60_000})
}

function waitForLine(child: ChildProcess, re: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (d: Buffer) => {
      text += d
      const m = text.split('\n').find((l) => re.test(l))
      if (m !== undefined) {
        child.stdout!.off('data', onData)
        resolve(m)
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', () => reject(new Error(`exited before ${re}: ${text}`)))
  })
}

function waitForText(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const onData = (d: Buffer) => {
      seen += d
      if (seen.includes(text)) {
        child.stdout!.off('data', onData)
        resolve()
      }
    }
    child.stdout!.on('data', onData)
    child.once('exit', () => reject(new Error(`exited before ${JSON.stringify(text)}: ${seen}`)))
  })
}

describe('imgdump run / sessions / save (CLI, C stand-in runtime)', () => {
  let env: NodeJS.ProcessEnv
  let sessionDir: string
  before(() => {
    const runtimeDir = tempDir()
    env = {XDG_RUNTIME_DIR: runtimeDir, IMGDUMP_FAULT: ''}
    sessionDir = path.join(runtimeDir, 'imgdump')
  })
  after(cleanupTemp)

  it('passes stdin/stdout through and exits with the runtime status', () => {
    const r = cli(['run', '--', peerBinary(), 'echo', '3'], env, 'hello runtime\n')
    assert.equal(r.stdout, 'HELLO RUNTIME\n')
    assert.equal(r.status, 3, r.stderr)
  })

  it('gives the runtime its control socket as fd 3 and the session name', () => {
    const r = cli(['run', '--name', 'envcheck', '--', peerBinary(), 'env'], env)
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'fd=3 session=envcheck fd3=open\n')
    const r2 = cli(['run', '--', peerBinary(), 'env'], env)
    assert.match(r2.stdout, /^fd=3 session=peer-\d+ fd3=open\n$/)
  })

  it('exits 128+N when signal N kills the runtime', () => {
    const r = cli(['run', '--', peerBinary(), 'raise', '15'], env)
    assert.equal(r.status, 143)
    const r2 = cli(['run', '--', peerBinary(), 'raise', '2'], env)
    assert.equal(r2.status, 130)
  })

  it('reports a runtime that cannot be started (exit 3)', () => {
    const r = cli(['run', '--', '/nonexistent/runtime'], env)
    assert.equal(r.status, 3)
    assert.match(r.stderr, /cannot start \/nonexistent\/runtime/)
  })

  afterEach(function () {
    const c = this.currentTest?.ctx?.cleanup as (() => void) | undefined
    c?.()
    if (this.currentTest?.ctx) this.currentTest.ctx.cleanup = undefined
  })

  it('lists a running session, forwards SIGTERM to it (exit 143), then cleans up', async function () {
    const orch = spawn(process.execPath, [cliPath, 'run', '--name', 'listed', '--', peerBinary(), 'wait'],
      {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'inherit']})
    this.test!.ctx!.cleanup = () => { if (orch.exitCode === null) orch.kill('SIGKILL') }
    await waitForLine(orch, /^ready$/)
    const r = cli(['sessions', '--json'], env)
    assert.equal(r.status, 0, r.stderr)
    const s = JSON.parse(r.stdout).sessions.find((x: {name: string}) => x.name === 'listed')
    assert.ok(s, r.stdout)
    assert.equal(s.orchestratorPid, orch.pid)
    // The kernel's view of the listed pid: the runtime, a child of the orchestrator.
    const stat = fs.readFileSync(`/proc/${s.pid}/stat`, 'utf8')
    assert.equal(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), orch.pid)
    assert.equal(fs.readlinkSync(`/proc/${s.pid}/exe`), peerBinary())
    assert.equal((fs.statSync(sessionDir).mode & 0o777), 0o700)
    assert.ok(fs.statSync(s.socket).isSocket())
    const table = cli(['sessions'], env)
    assert.match(table.stdout, new RegExp(`^listed\\s+${s.pid}\\s+${peerBinary()}`, 'm'))
    const again = cli(['run', '--name', 'listed', '--', peerBinary(), 'env'], env)
    assert.equal(again.status, 2)
    assert.match(again.stderr, /already running/)
    const status = await new Promise<number | null>((resolve) => {
      orch.once('exit', (code) => resolve(code))
      orch.kill('SIGTERM')
    })
    assert.equal(status, 143)
    assert.ok(!fs.existsSync(path.join(sessionDir, 'listed.json')))
    assert.ok(!fs.existsSync(path.join(sessionDir, 'listed.sock')))
  })

  it('on a terminal, Ctrl-C reaches the runtime once and the orchestrator survives it', async function () {
    const cmd = [process.execPath, cliPath, 'run', '--name', 'tty', '--', peerBinary(), 'sigcount'].map((a) => `'${a}'`).join(' ')
    // `exec`: script(1) runs the command through $SHELL -c, and a shell that stays in the
    // foreground group (dash, the /bin/sh CI falls back to when SHELL is unset) dies of the
    // Ctrl-C itself. The orchestrator must be the process the terminal's session starts.
    const term = spawn('script', ['-qec', `exec ${cmd}`, '/dev/null'],
      {env: {...process.env, ...env, SHELL: '/bin/sh'}, stdio: ['pipe', 'pipe', 'inherit']})
    this.test!.ctx!.cleanup = () => { if (term.exitCode === null) term.kill('SIGKILL') }
    await waitForLine(term, /ready/)
    term.stdin!.write('\x03')
    await waitForText(term, '^C') // the terminal echoed it: SIGINT went to the foreground group
    const rec = JSON.parse(fs.readFileSync(path.join(sessionDir, 'tty.json'), 'utf8'))
    process.kill(rec.orchestratorPid, 'SIGUSR1') // passed on to the runtime, which reports
    const out = await waitForLine(term, /int=/)
    assert.match(out, /int=1\r?$/)
    term.stdin!.end()
    assert.equal(await new Promise((resolve) => term.once('exit', resolve)), 0)
  })

  it('removes stale records of dead sessions', () => {
    fs.mkdirSync(sessionDir, {recursive: true, mode: 0o700})
    const dead = spawnSync('true').pid!
    const rec = {name: 'stale', pid: dead, orchestratorPid: dead, runtime: '/x', args: [], started: new Date().toISOString(),
      socket: path.join(sessionDir, 'stale.sock'), connected: false}
    fs.writeFileSync(path.join(sessionDir, 'stale.json'), JSON.stringify(rec))
    const r = cli(['sessions', '--json'], env)
    assert.ok(!JSON.parse(r.stdout).sessions.some((x: {name: string}) => x.name === 'stale'))
    assert.ok(!fs.existsSync(path.join(sessionDir, 'stale.json')))
  })

  it('save to an unknown session exits 9', () => {
    const r = cli(['save', 'no-such-session', '-o', '/tmp/never.img'], env)
    assert.equal(r.status, 9)
    assert.match(r.stderr, /no running session/)
    const j = cli(['save', 'no-such-session', '-o', '/tmp/never.img', '--json'], env)
    assert.equal(j.status, 9)
    assert.equal(JSON.parse(j.stdout).error.code, 'SESSION_UNKNOWN')
  })

  describe('saving a session (orchestrator in this process, stub image side)', () => {
    let result: Promise<RunResult>
    let runtime: ChildProcess
    const log: string[] = []
    const saved = () => process.env.XDG_RUNTIME_DIR

    before(async () => {
      const previous = saved()
      process.env.XDG_RUNTIME_DIR = env.XDG_RUNTIME_DIR
      let started!: (c: ChildProcess) => void
      const spawned = new Promise<ChildProcess>((resolve) => (started = resolve))
      result = runSession({runtime: peerBinary(), args: ['serve'], name: 'kv', imageSide: stubImageSide(log), pipeStdio: true, spawned: started})
      runtime = await spawned
      await waitForLine(runtime, /^ready$/)
      process.env.XDG_RUNTIME_DIR = previous
    })

    after(async () => {
      // A failed test must not leave the stand-in runtime (and so this run) hanging.
      if (runtime && runtime.exitCode === null && runtime.signalCode === null) runtime.kill('SIGKILL')
      await result?.catch(() => undefined)
    })

    it('saves at the runtime safepoint and reports size, pages, time', async () => {
      const dir = tempDir()
      const target = path.join(dir, 'kv.img')
      const r = await cliAsync(['save', 'kv', '-o', target, '--json'], env)
      assert.equal(r.status, 0, r.stderr + r.stdout)
      const out = JSON.parse(r.stdout)
      assert.equal(out.path, target)
      assert.equal(out.bytes, 0x1000 + 64 * 1024)
      assert.equal(out.mode, 'continue')
      assert.equal(out.session, 'kv')
      assert.equal(out.pid, runtime.pid)
      const img = fs.readFileSync(target)
      assert.deepEqual(img.subarray(0, STUB_MAGIC.length), STUB_MAGIC)
      for (let i = 0; i < 64 * 1024; i += 4093) assert.equal(img[0x1000 + i], peerPattern(i))
      assert.deepEqual(log, ['plan', 'create', 'finalize', 'commit'])
      const listed = JSON.parse(cli(['sessions', '--json'], env).stdout).sessions.find((s: {name: string}) => s.name === 'kv')
      assert.equal(listed.connected, true)
      assert.equal(listed.heapBytes, 64 * 1024)
      assert.equal(listed.lastSave.path, target)
      assert.equal(listed.lastSave.bytes, out.bytes)
    })

    it('prints a human summary without --json, addressed by pid', async () => {
      const target = path.join(tempDir(), 'by-pid.img')
      const r = await cliAsync(['save', String(runtime.pid), '-o', target], env)
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stdout, new RegExp(`^saved ${target}: 68\\.0 KiB, \\d+ pages written, [0-9.]+ ms, [0-9.]+ MB/s\\n$`))
      assert.equal(r.stderr, '', 'no progress output without a terminal')
    })

    it('shows progress on a terminal (stderr is a pty under script(1))', async () => {
      const target = path.join(tempDir(), 'tty.img')
      const cmd = [process.execPath, cliPath, 'save', 'kv', '-o', target].map((a) => `'${a}'`).join(' ')
      const child = spawn('script', ['-qec', cmd, '/dev/null'], {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
      let out = ''
      child.stdout.on('data', (d) => (out += d))
      const status = await new Promise((resolve) => child.on('close', resolve))
      assert.equal(status, 0, out)
      assert.match(out, /\r\x1b\[Kwaiting for kv to reach a safepoint/)
      assert.match(out, /\r\x1b\[Ksaved /)
    })

    it('a refusal by the runtime exits 10 with its reason', async () => {
      runtime.stdin!.write('refuse\n')
      await waitForLine(runtime, /^will refuse$/)
      const target = path.join(tempDir(), 'refused.img')
      const r = await cliAsync(['save', 'kv', '-o', target], env)
      assert.equal(r.status, 10, r.stderr)
      assert.match(r.stderr, /more than one thread/)
      assert.ok(!fs.existsSync(target))
    })

    it('a second request while one waits is SAVE_BUSY (exit 10); a requester that left cancels its save', async () => {
      runtime.stdin!.write('hold\n')
      await waitForLine(runtime, /^holding$/)
      const target = path.join(tempDir(), 'cancelled.img')
      const sock = net.connect(path.join(sessionDir, 'kv.sock'))
      sock.write(JSON.stringify({t: 'save', v: 1, path: target, mode: 'continue'}) + '\n')
      const first = await new Promise<Record<string, unknown>>((resolve) => sock.once('data', (d) => resolve(JSON.parse(String(d).split('\n')[0]))))
      assert.deepEqual(first, {t: 'status', state: 'waiting', connected: true})
      const busy = await cliAsync(['save', 'kv', '-o', path.join(tempDir(), 'busy.img'), '--json'], env)
      assert.equal(busy.status, 10)
      assert.equal(JSON.parse(busy.stdout).error.code, 'SAVE_BUSY')
      sock.destroy()
      await new Promise((resolve) => setTimeout(resolve, 500)) // the orchestrator (this process) sees the close
      runtime.stdin!.write('release\n')
      assert.equal(await waitForLine(runtime, /^error /), 'error CANCELLED')
      assert.ok(!fs.existsSync(target))
      assert.deepEqual(log.slice(-4), ['plan', 'create', 'finalize', 'commit'], 'nothing planned for the cancelled save')
    })

    it('--exit saves and ends the runtime; run returns its status 0', async () => {
      const target = path.join(tempDir(), 'last.img')
      const r = await cliAsync(['save', 'kv', '-o', target, '--exit'], env)
      assert.equal(r.status, 0, r.stderr)
      const res = await result
      assert.equal(res.status, 0)
      assert.equal(res.saves, 4)
      assert.ok(fs.existsSync(target))
      assert.ok(!fs.existsSync(path.join(sessionDir, 'kv.json')))
    })
  })
})

