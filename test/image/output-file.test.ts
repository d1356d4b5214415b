import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {ImgdumpError} from '../../src/errors.js'
import {createPendingOutput, removeDeadTemps, tempNameFor} from '../../src/image/output-file.js'
import {makeTempDir} from './synthetic-runtime.js'

describe('image output file (atomic, O_TMPFILE)', () => {
  let dir: string
  beforeEach(() => { dir = makeTempDir() })
  afterEach(() => fs.rmSync(dir, {recursive: true, force: true}))

  it('is invisible until commit, then replaces the target with mode 0700 & ~umask', () => {
    const target = path.join(dir, 'img')
    fs.writeFileSync(target, 'previous')
    const p = createPendingOutput(target)
    assert.equal(p.kind, 'tmpfile')
    fs.writeSync(p.fd, 'new image', 0, 'utf8')
    assert.deepEqual(fs.readdirSync(dir), ['img'])
    assert.equal(fs.readFileSync(target, 'utf8'), 'previous')
    p.commit()
    assert.equal(fs.readFileSync(target, 'utf8'), 'new image')
    assert.deepEqual(fs.readdirSync(dir), ['img'])
    const umask = process.umask()
    assert.equal(fs.statSync(target).mode & 0o777, 0o700 & ~umask)
  })

  it('is durable unless IMGDUMP_SYNC=0, decided when the output is created (the runtime is told in the plan)', () => {
    const saved = process.env.IMGDUMP_SYNC
    try {
      delete process.env.IMGDUMP_SYNC
      const a = createPendingOutput(path.join(dir, 'a'))
      process.env.IMGDUMP_SYNC = '0'
      const b = createPendingOutput(path.join(dir, 'b'))
      assert.deepEqual([a.durable, b.durable], [true, false])
      delete process.env.IMGDUMP_SYNC
      b.commit() // commits as it was created: without fsync, still atomically
      a.commit()
      assert.deepEqual(fs.readdirSync(dir).sort(), ['a', 'b'])
    } finally {
      if (saved === undefined) delete process.env.IMGDUMP_SYNC
      else process.env.IMGDUMP_SYNC = saved
    }
  })

  it('closes the file before it takes the target name (exec right after a commit never meets ETXTBSY)', () => {
    for (const forceNamed of [false, true]) {
      const target = path.join(dir, `named-${forceNamed}`)
      const p = createPendingOutput(target, {forceNamed})
      fs.writeSync(p.fd, 'image', 0, 'utf8')
      const rename = fs.renameSync
      let openAtRename: boolean | undefined
      fs.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
        try { fs.fstatSync(p.fd); openAtRename = true } catch { openAtRename = false }
        rename(from, to)
      }
      try { p.commit() } finally { fs.renameSync = rename }
      assert.equal(openAtRename, false, `${p.kind}: the descriptor was still open at the rename`)
      assert.equal(fs.readFileSync(target, 'utf8'), 'image')
    }
  })

  it('discard leaves the previous image byte-identical and no temp behind (both kinds)', () => {
    for (const forceNamed of [false, true]) {
      const target = path.join(dir, 'img')
      fs.writeFileSync(target, 'previous')
      const p = createPendingOutput(target, {forceNamed})
      assert.equal(p.kind, forceNamed ? 'named' : 'tmpfile')
      fs.writeSync(p.fd, 'partial')
      p.discard()
      p.discard()
      assert.equal(fs.readFileSync(target, 'utf8'), 'previous')
      assert.deepEqual(fs.readdirSync(dir), ['img'])
    }
  })

  it('fallback temp name carries the PID and commits by rename', () => {
    const target = path.join(dir, 'img')
    const p = createPendingOutput(target, {forceNamed: true})
    assert.equal(p.tempPath, path.join(dir, `.img.imgdump-${process.pid}.tmp`))
    assert.ok(fs.existsSync(p.tempPath))
    fs.writeSync(p.fd, 'x')
    p.commit()
    assert.deepEqual(fs.readdirSync(dir), ['img'])
    assert.equal(fs.statSync(target).mode & 0o077, 0)
  })

  it('removes temps of dead owners only', () => {
    const dead = spawnSync('true').pid as number
    const deadTemp = tempNameFor(path.join(dir, 'a'), dead)
    const liveTemp = tempNameFor(path.join(dir, 'b'), process.ppid)
    fs.writeFileSync(deadTemp, '')
    fs.writeFileSync(liveTemp, '')
    fs.writeFileSync(path.join(dir, 'unrelated.tmp'), '')
    assert.deepEqual(removeDeadTemps(dir), [path.basename(deadTemp)])
    assert.deepEqual(fs.readdirSync(dir).sort(), [path.basename(liveTemp), 'unrelated.tmp'].sort())
  })

  it('an output directory that does not exist is a typed io error', () => {
    assert.throws(() => createPendingOutput(path.join(dir, 'missing', 'img')),
      (e: unknown) => e instanceof ImgdumpError && e.phase === 'io' && /missing/.test(e.message))
  })
})
