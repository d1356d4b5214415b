import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {ImgdumpError} from '../../src/errors.js'
import {closeFd, pollFd, recvWithFds, sendAll, socketPair} from '../../src/native/socket.js'
import {PlannerSession} from '../../src/session/planner-session.js'
import {serveOneSave} from '../../src/session/standalone.js'
import {cleanupTemp, peerBinary, peerPattern, STUB_MAGIC, stubImageSide, tempDir} from './helpers.js'

/** Start the C peer with `childFd` as its fd 3; resolves with its exit status and stdout. */
function runPeer(args: string[], childFd: number, env: NodeJS.ProcessEnv = {}): Promise<{status: number | null; stdout: string; stderr: string}> {
  const child = spawn(peerBinary(), args, {stdio: ['ignore', 'pipe', 'pipe', childFd], env: {...process.env, ...env}})
  closeFd(childFd)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d) => (stdout += d))
  child.stderr!.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('close', (status) => resolve({status, stdout, stderr})))
}

describe('session fd passing (koffi sendmsg/recvmsg, SCM_RIGHTS)', () => {
  after(cleanupTemp)

  it('passes a writable fd between two sockets in this process', () => {
    const [a, b] = socketPair()
    const file = path.join(tempDir(), 'f')
    const fd = fs.openSync(file, 'w+')
    sendAll(a, Buffer.from('{"t":"x"}\n'), fd)
    const got = recvWithFds(b)
    assert.equal(got.data.toString(), '{"t":"x"}\n')
    assert.equal(got.fds.length, 1)
    assert.notEqual(got.fds[0], fd)
    fs.writeSync(got.fds[0], 'through the passed fd')
    for (const x of [a, b, fd, got.fds[0]]) closeFd(x)
    assert.equal(fs.readFileSync(file, 'utf8'), 'through the passed fd')
  })

  it('a C runtime receives the plan with the fd, writes its heap there, and the planner finalizes', async () => {
    const dir = tempDir()
    const target = path.join(dir, 'out.img')
    const [parent, child] = socketPair()
    const log: string[] = []
    const outcomeP = serveOneSave(parent, stubImageSide(log))
    const peer = await runPeer(['save', '3', target], child)
    const outcome = await outcomeP
    assert.equal(peer.status, 0, peer.stdout + peer.stderr)
    assert.ok(outcome.ok, !outcome.ok ? outcome.error.message : '')
    assert.deepEqual(log, ['plan', 'create', 'finalize', 'commit'])
    assert.match(peer.stdout, new RegExp(`^done ${target} ${64 * 1024 + 4096}\\n$`))
    const img = fs.readFileSync(target)
    assert.equal(img.length, 0x1000 + 64 * 1024)
    assert.deepEqual(img.subarray(0, STUB_MAGIC.length), STUB_MAGIC)
    for (let i = 0; i < 64 * 1024; i += 997) assert.equal(img[0x1000 + i], peerPattern(i), `heap byte ${i}`)
    assert.equal(fs.readdirSync(dir).length, 1, 'no temp file left')
    assert.equal(outcome.ok && outcome.result.path, target)
    assert.equal(outcome.ok && outcome.request.generation, 1n)
  })

  it('a runtime that fails its writes gets an error and the output is discarded', async () => {
    const dir = tempDir()
    fs.writeFileSync(path.join(dir, 'out.img'), 'previous image')
    const [parent, child] = socketPair()
    const log: string[] = []
    const outcomeP = serveOneSave(parent, stubImageSide(log))
    const peer = await runPeer(['save', '3', path.join(dir, 'out.img')], child, {PEER_FAIL_WRITE: '1'})
    const outcome = await outcomeP
    assert.equal(peer.stdout, 'error RUNTIME_WRITE_FAILED\n')
    assert.ok(!outcome.ok && outcome.error.phase === 'save')
    assert.deepEqual(log, ['plan', 'create', 'discard'])
    assert.deepEqual(fs.readdirSync(dir), ['out.img'])
    assert.equal(fs.readFileSync(path.join(dir, 'out.img'), 'utf8'), 'previous image')
  })

  it('an image-side refusal reaches the runtime as an error with its code', async () => {
    const [parent, child] = socketPair()
    const side = stubImageSide()
    const refusing = async () => ({...(await side()), planImage(): never { throw new ImgdumpError('edit', 'ELF_NO_ROOM', 'no room') }})
    const outcomeP = serveOneSave(parent, refusing)
    const peer = await runPeer(['save', '3', path.join(tempDir(), 'x.img')], child)
    const outcome = await outcomeP
    assert.equal(peer.stdout, 'error ELF_NO_ROOM\n')
    assert.ok(!outcome.ok && outcome.error.code === 'ELF_NO_ROOM')
  })

  it('answers a protocol violation with an error and ends the standalone session', async () => {
    const [parent, child] = socketPair()
    const outcomeP = serveOneSave(parent, stubImageSide())
    sendAll(child, Buffer.from('{"t":"hello","v":1,"pid":1,"exe":"/x","api":1}\n{"t":"written","id":1,"crc32c":[],"bytes":"0x0"}\n'))
    const outcome = await outcomeP
    assert.ok(!outcome.ok && outcome.error.code === 'PROTO_UNEXPECTED', JSON.stringify(outcome))
    let text = ''
    for (;;) {
      const r = recvWithFds(child)
      if (r.data.length === 0) break
      text += r.data.toString()
    }
    closeFd(child)
    const lines = text.trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual(lines[0], {t: 'welcome', v: 1})
    assert.equal(lines[1].t, 'error')
    assert.equal(lines[1].code, 'PROTO_UNEXPECTED')
  })

  it('holds request-save back until the runtime was welcomed, and answers nothing to refused', async () => {
    const [parent, child] = socketPair()
    const session = new PlannerSession(parent, stubImageSide())
    const {id, outcome} = session.requestSave('/tmp/x.img', 'exec')
    assert.equal(id, 1 << 20)
    assert.equal(pollFd(child, false, 100), false, 'nothing sent before hello')
    sendAll(child, Buffer.from('{"t":"hello","v":1,"pid":1,"exe":"/x","api":1}\n'))
    let text = ''
    // The planner runs on this event loop: let it run between non-blocking looks.
    while (text.split('\n').length < 3) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      if (pollFd(child, false, 0)) text += recvWithFds(child).data.toString()
    }
    const [welcome, request] = text.trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual(welcome, {t: 'welcome', v: 1})
    assert.deepEqual(request, {t: 'request-save', id: 1 << 20, path: '/tmp/x.img', mode: 'exec'})
    sendAll(child, Buffer.from(`{"t":"refused","id":${id},"code":-3,"message":"two threads"}\n{"t":"refused","id":5,"code":-3,"message":"x"}\n`))
    const o = await outcome
    assert.ok(!o.ok && o.error.phase === 'save' && o.error.code === 'RUNTIME_REFUSED' && /two threads/.test(o.error.message))
    assert.ok(session.connected)
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(pollFd(child, false, 0), false, 'no answer to refused')
    session.close()
    closeFd(child)
  })

  it('a hello in the middle of a save (the runtime restarted) discards the output and is welcomed', async () => {
    const [parent, child] = socketPair()
    const log: string[] = []
    const ended: string[] = []
    const session = new PlannerSession(parent, stubImageSide(log), {saveEnded: (o) => ended.push(o.ok ? 'ok' : o.error.code)})
    const heap = '"heap":{"base":"0x600000000000","brk":"0x600000010000","reserve":"0x100000","header":"0x600000000000"}'
    sendAll(child, Buffer.from('{"t":"hello","v":1,"pid":1,"exe":"/x","api":1}\n' +
      `{"t":"save","id":4,"path":"${path.join(tempDir(), 'h.img')}","mode":"continue","generation":1,"exe":"/x","loadBias":"0x0","phdr":"0x40",` +
      `${heap},"regions":[],"libraries":[],"pinning":{"noRandomize":true,"stack":"finite","stackLimit":"0x800000"},"origin":null}\n`))
    const read = async (lines: number) => {
      let text = ''
      const fds: number[] = []
      while (text.split('\n').length <= lines) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        if (pollFd(child, false, 0)) {
          const r = recvWithFds(child)
          text += r.data.toString()
          fds.push(...r.fds)
        }
      }
      return {msgs: text.trim().split('\n').map((l) => JSON.parse(l)), fds}
    }
    const first = await read(2)
    assert.deepEqual(first.msgs.map((m) => m.t), ['welcome', 'plan'])
    assert.equal(first.fds.length, 1)
    sendAll(child, Buffer.from('{"t":"hello","v":1,"pid":1,"exe":"/x","api":1}\n'))
    const second = await read(1)
    assert.deepEqual(second.msgs, [{t: 'welcome', v: 1}])
    assert.deepEqual(log, ['plan', 'create', 'discard'])
    assert.deepEqual(ended, ['PROTO_UNEXPECTED'])
    session.close()
    for (const fd of [child, ...first.fds]) closeFd(fd)
  })

  it('asks for early writeback (plan.flush) only when the output is fsync\'d and kept as written', async () => {
    const heap = '"heap":{"base":"0x600000000000","brk":"0x600000010000","reserve":"0x100000","header":"0x600000000000"}'
    const flushOf = async (opts: {durable?: boolean; rewritesOutput?: boolean}) => {
      const [parent, child] = socketPair()
      const session = new PlannerSession(parent, stubImageSide([], opts))
      sendAll(child, Buffer.from('{"t":"hello","v":1,"pid":1,"exe":"/x","api":1}\n' +
        `{"t":"save","id":5,"path":"${path.join(tempDir(), 'f.img')}","mode":"continue","generation":1,"exe":"/x","loadBias":"0x0","phdr":"0x40",` +
        `${heap},"regions":[],"libraries":[],"pinning":{"noRandomize":true,"stack":"finite","stackLimit":"0x800000"},"origin":null}\n`))
      let text = ''
      const fds: number[] = []
      while (!/"t":"plan"/.test(text)) {
        await new Promise((resolve) => setTimeout(resolve, 20))
        if (pollFd(child, false, 0)) {
          const r = recvWithFds(child)
          text += r.data.toString()
          fds.push(...r.fds)
        }
      }
      session.close()
      for (const fd of [child, ...fds]) closeFd(fd)
      return JSON.parse(text.trim().split('\n').find((l) => l.includes('"plan"'))!).flush
    }
    assert.equal(await flushOf({}), true)
    assert.equal(await flushOf({durable: false}), false, 'IMGDUMP_SYNC=0: nothing to fsync')
    assert.equal(await flushOf({rewritesOutput: true}), false, 'Mach-O: finalize rewrites the file')
  })

  it('refuses another protocol version', async () => {
    const [parent, child] = socketPair()
    const outcomeP = serveOneSave(parent, stubImageSide())
    sendAll(child, Buffer.from('{"t":"hello","v":2,"pid":1,"exe":"/x","api":1}\n'))
    const outcome = await outcomeP
    assert.ok(!outcome.ok && outcome.error.code === 'PROTO_VERSION')
    const r = recvWithFds(child)
    closeFd(child)
    assert.equal(JSON.parse(r.data.toString().split('\n')[0]).code, 'PROTO_VERSION')
  })
})
