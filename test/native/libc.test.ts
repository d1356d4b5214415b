import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {ADDR_NO_RANDOMIZE, currentPersonality, libc} from '../../src/native/libc.js'

describe('src/native libc bindings (koffi)', () => {
  it('getpid agrees with Node', () => {
    assert.equal(libc().getpid(), process.pid)
  })

  it('personality can be queried and reports the randomisation bit', () => {
    const p = currentPersonality()
    assert.ok(p >= 0, `personality query returned ${p}`)
    // setarch -R runs a child with ADDR_NO_RANDOMIZE; the child sees the bit set.
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e',
      `import('./src/native/libc.ts').then(m => console.log(m.currentPersonality()))`], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    const rr = spawnSync('setarch', ['-R', process.execPath, '--import', 'tsx', '-e',
      `import('./src/native/libc.ts').then(m => console.log(m.currentPersonality()))`], {encoding: 'utf8'})
    assert.equal(rr.status, 0, rr.stderr)
    assert.equal(Number(rr.stdout.trim()) & ADDR_NO_RANDOMIZE, ADDR_NO_RANDOMIZE)
    assert.equal(Number(r.stdout.trim()) & ADDR_NO_RANDOMIZE, p & ADDR_NO_RANDOMIZE)
  })

  it('execve replaces the process and returns a typed error on failure', () => {
    const script = `
      Promise.all([import('./src/native/libc.ts'), import('./src/native/exec-prepare.ts')]).then(([m, p]) => {
        p.prepareProcessForExec()
        try { m.execve('/nonexistent/x', ['x'], process.env) } catch (e) { console.log('failed:' + e.code) }
        m.execve('/bin/echo', ['echo', 'replaced', String(m.libc().getpid())], process.env)
      })`
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    const lines = r.stdout.trim().split('\n')
    assert.equal(lines[0], 'failed:EXEC_FAILED')
    assert.match(lines[1], /^replaced \d+$/)
    assert.equal(Number(lines[1].split(' ')[1]), r.pid)
  })
})
