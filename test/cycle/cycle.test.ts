/**
 * The unexec cycle end to end (issue #4): a kv runtime saves its state into an image, the
 * kernel executes the image, and the state is the same — for dynamic -no-pie and PIE
 * runtimes, lazy binding and -z now.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {closeSync, existsSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {buildKv, CLI, rebuildKvx, runKv, stateLine, tempDir, VARIANTS} from './kv-harness.js'

describe('unexec cycle (kv runtime)', function () {
  let out: string
  let dir: string
  before(function () {
    out = buildKv()
    dir = tempDir('imgdump-cycle-')
  })
  after(function () {
    rmSync(out, {recursive: true, force: true})
    rmSync(dir, {recursive: true, force: true})
  })

  for (const variant of VARIANTS) {
    it(`${variant}: heap, .data, .bss, roots, extern slot, saved FILE * survive save → restore`, function () {
      const image = join(dir, `${variant}.img`)
      const fresh = runKv(join(out, variant), ['fill 2000', 'mode custom-mode', 'fn', 'set hello world', 'dump', `save ${image}`, 'dump'])
      assert.equal(fresh.status, 0, fresh.stderr)
      assert.match(fresh.stdout, /save: 0 ok/)
      const before = stateLine(fresh.stdout)
      assert.match(before, /count=2001 walked=2001 mode=custom-mode data=1001 bss=1 saves=1 fn=my_alloc/)
      assert.ok(statSync(image).mode & 0o100, 'image is executable')

      const restored = runKv(image, ['dump', 'get hello', 'get k1234', 'strlen abcdefg', 'out via-saved-file', 'gen', 'kvx'])
      assert.equal(restored.status, 0, restored.stderr)
      assert.equal(stateLine(restored.stdout), before)
      const lines = restored.stdout.trim().split('\n')
      assert.deepEqual(lines.slice(1), ['world', 'value-1234-1522756', '7', 'via-saved-file', '1', '1', 'bye'], 'exit handlers run at the end')
    })
  }

  it('chained saves keep working for 5 generations (restore → change → save → restore)', function () {
    const prog = join(out, 'kv-pie')
    let current = prog
    for (let gen = 1; gen <= 5; gen++) {
      const image = join(dir, `chain-${gen}.img`)
      const r = runKv(current, [`set g${gen} v${gen}`, 'gen', `save ${image}`])
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout.split('\n')[0], String(gen - 1))
      assert.match(r.stdout, /save: 0 ok/)
      current = image
    }
    const last = runKv(current, ['gen', 'get g1', 'get g3', 'get g5', 'count'])
    assert.equal(last.status, 0, last.stderr)
    assert.deepEqual(last.stdout.trim().split('\n'), ['5', 'v1', 'v3', 'v5', '5', 'bye'])
    // Each image names its parent: the SHA-256 of the parent's manifest bytes (none for generation 1).
    const manifestSha = (img: string) => {
      const b = readFileSync(img)
      const at = b.lastIndexOf(Buffer.from('IMGDMNF1')) // the note is in the tail; libimgdump's .rodata has the magic too
      return createHash('sha256').update(b.subarray(at, at + b.readUInt32LE(at + 16))).digest('hex')
    }
    const parentOf = (img: string) => JSON.parse(spawnSync(process.execPath, [CLI, 'inspect', img, '--json'], {encoding: 'utf8'}).stdout).parent
    assert.equal(parentOf(join(dir, 'chain-1.img')), null)
    assert.equal(parentOf(join(dir, 'chain-2.img')), manifestSha(join(dir, 'chain-1.img')))
    assert.equal(parentOf(join(dir, 'chain-5.img')), manifestSha(join(dir, 'chain-4.img')))
    // Images never accumulate layers: generation 5 is no bigger than generation 1 plus its heap growth.
    assert.ok(statSync(join(dir, 'chain-5.img')).size < statSync(join(dir, 'chain-1.img')).size * 2)
  })

  it('IMGDUMP_EXEC continues in the new image (same PID) and EXIT exits 0 after saving', function () {
    const image = join(dir, 'exec.img')
    const r = runKv(join(out, 'kv-pie'), ['set a 1', `save ${image} exec`, 'gen', 'get a', 'set b 2', `save ${join(dir, 'exit.img')} exit`, 'gen'])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['1', '1', 'bye'])
    const e = runKv(join(dir, 'exit.img'), ['gen', 'get a', 'get b'])
    assert.deepEqual(e.stdout.trim().split('\n'), ['2', '1', '2', 'bye'])
  })

  it('start-up code over saved data: PIE pointer global, COPY-relocated environ, fn pointer, pending stdio', function () {
    const image = join(dir, 'startup.img')
    const fresh = runKv(join(out, 'kv-pie'), ['mode reassigned', 'fn', 'pending PENDING-TEXT', `save ${image}`], {env: {KV_VAR: 'at-save'}})
    assert.equal(fresh.status, 0, fresh.stderr)
    assert.equal(fresh.stdout.split('PENDING-TEXT').length - 1, 1)
    const r = runKv(image, ['dump', 'env KV_VAR'], {env: {KV_VAR: 'at-restore'}})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.split('PENDING-TEXT').length - 1, 0, 'pending stdio is not printed again')
    assert.match(r.stdout, /mode=reassigned .* fn=my_alloc/)
    assert.match(r.stdout, /\nat-restore\n/)
  })

  it('a registered region (imgdump_region) is saved and mapped back at its address', function () {
    const image = join(dir, 'region.img')
    const fresh = runKv(join(out, 'kv-pie'), ['region', 'region-sum', `save ${image}`])
    assert.equal(fresh.status, 0, fresh.stderr)
    assert.match(fresh.stdout, /region: 0\nregion-sum: (\d+)\n/)
    const sum = /region-sum: (\d+)/.exec(fresh.stdout)![1]
    const r = runKv(image, ['region-sum'])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, `region-sum: ${sum}\nbye\n`)
  })

  it('two touching regions are written one by one by the runtime and mapped by one PT_LOAD', function () {
    const image = join(dir, 'region-split.img')
    const fresh = runKv(join(out, 'kv-nopie'), ['region split', 'region-sum', `save ${image}`]) // no-pie: p_vaddr = address
    assert.equal(fresh.status, 0, fresh.stderr)
    assert.match(fresh.stdout, /region: 0\nregion-sum: (\d+)\nsave: 0 ok\n/)
    const sum = /region-sum: (\d+)/.exec(fresh.stdout)![1]
    const loads = execFileSync('readelf', ['-lW', image], {encoding: 'utf8'}).split('\n').filter((l) => /LOAD.* 0x0000700000/.test(l))
    assert.equal(loads.length, 1, loads.join('\n'))
    assert.match(loads[0], /0x0000700000000000 0x0000700000000000 0x100000 0x100000 RW/)
    const r = runKv(image, ['region-sum'])
    assert.equal(r.stdout, `region-sum: ${sum}\nbye\n`)
  })

  it('a restored process grows its heap far beyond the saved size', function () {
    const image = join(dir, 'grow.img')
    assert.equal(runKv(join(out, 'kv-nopie'), ['set x y', `save ${image}`]).status, 0)
    const r = runKv(image, ['grow 512', 'get x', 'fill 10000', 'count'])
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['grown 512 MiB', 'y', '10001', 'bye'])
  })

  it('restores with `ulimit -s unlimited` (legacy mmap layout) and when started directly unpinned', function () {
    const image = join(dir, 'stack.img')
    assert.equal(runKv(join(out, 'kv-pie'), ['set s t', `save ${image}`]).status, 0)
    const r = runKv(image, ['get s', 'gen'], {shellPrefix: 'ulimit -s unlimited;'})
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(r.stdout.trim().split('\n'), ['t', '1', 'bye'])
  })

  it('the image is a valid executable: readelf is clean and gdb reads a saved global from the file', function () {
    const image = join(dir, 'gdb.img')
    assert.equal(runKv(join(out, 'kv-nopie'), ['mode m1', 'mode m2', 'mode m3', `save ${image}`]).status, 0)
    const re = spawnSync('readelf', ['-lSW', image], {encoding: 'utf8'})
    assert.equal(re.status, 0)
    assert.equal(re.stderr, '', `readelf warnings: ${re.stderr}`)
    const g = spawnSync('gdb', ['-batch', '-nx', '-ex', 'print data_counter', image], {encoding: 'utf8'})
    assert.match(g.stdout, /\$1 = 1003/)
  })

  it('refuses to run against a library with another build-id, naming it', function () {
    const own = buildKv(tempDir('imgdump-kvx-'))
    try {
      const image = join(dir, 'lib.img')
      assert.equal(runKv(join(own, 'kv-pie'), ['set a b', `save ${image}`]).status, 0)
      assert.equal(runKv(image, ['kvx']).stdout, '1\nbye\n')
      rebuildKvx(own, '2')
      const r = runKv(image, ['kvx', 'get a'])
      assert.notEqual(r.status, 0)
      assert.match(r.stderr, /libkvx\.so.*(changed|build-id)/)
      assert.doesNotMatch(r.stdout, /\bb\b/, 'nothing of the saved state was used')
    } finally {
      rmSync(own, {recursive: true, force: true})
    }
  })

  it('refuses a second thread and a save while one is in progress; the runtime keeps running', function () {
    const r = runKv(join(out, 'kv-pie'), [`thread-save ${join(dir, 't.img')}`, `nested-save ${join(dir, 'n.img')}`, 'set still alive', 'get still'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /save: -3 .*threads/)
    assert.match(r.stdout, /nested save: -4/)
    assert.match(r.stdout, /\nalive\n/)
    assert.ok(!existsSync(join(dir, 't.img')))
  })

  it('a denied personality gives a clear error, in a fresh runtime (save) and in an image (restore)', function () {
    const image = join(dir, 'persona.img')
    assert.equal(runKv(join(out, 'kv-pie'), ['set p q', `save ${image}`]).status, 0)
    const fresh = runKv(join(out, 'deny-personality'), ['set a b', `save ${join(dir, 'denied.img')}`, 'get a'], {argv0: [join(out, 'deny-personality'), join(out, 'kv-pie')]})
    assert.equal(fresh.status, 0, fresh.stderr)
    assert.match(fresh.stdout, /save: -10 .*personality/)
    const r = runKv(join(out, 'deny-personality'), ['get p'], {argv0: [join(out, 'deny-personality'), image]})
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /personality/)
    assert.doesNotMatch(r.stdout, /q/)
  })

  it('a statically linked runtime is refused with the reason, and keeps running', function () {
    const r = runKv(join(out, 'kv-static'), ['set a b', `save ${join(dir, 'static.img')}`, 'get a'])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /save: -11 .*IMAGE_STATIC_UNSUPPORTED: .*statically linked/)
    assert.match(r.stdout, /\nb\nbye\n$/)
    assert.ok(!existsSync(join(dir, 'static.img')))
  })

  it('a truncated image is refused by the kernel, by verify and by restore', function () {
    const image = join(dir, 'trunc.img')
    assert.equal(runKv(join(out, 'kv-nopie'), ['grow 4', 'set t u', `save ${image}`]).status, 0)
    const bad = join(dir, 'trunc2.img')
    execFileSync('cp', [image, bad])
    truncateSync(bad, statSync(bad).size - 8192)
    // The moved program header table is the last thing in the file: any truncation removes it
    // and the kernel refuses the exec (ENOEXEC) before anything of the image runs.
    const r = runKv(bad, ['get t'], {shellPrefix: ':;'})
    assert.equal(r.status, 126, r.stderr)
    assert.match(r.stderr, /Exec format error|cannot execute/)
    assert.doesNotMatch(r.stdout, /\bu\b/)
    const v = spawnSync(process.execPath, [CLI, 'verify', bad], {encoding: 'utf8'})
    assert.equal(v.status, 7, v.stdout + v.stderr)
    const x = spawnSync(process.execPath, [CLI, 'restore', bad], {encoding: 'utf8', input: 'get t\n'})
    assert.notEqual(x.status, 0)
    assert.doesNotMatch(x.stdout, /\bu\b/)
  })

  it('a corrupted manifest is refused by the image itself', function () {
    const image = join(dir, 'corrupt.img')
    assert.equal(runKv(join(out, 'kv-nopie'), ['set c d', `save ${image}`]).status, 0)
    const bytes = readFileSync(image)
    const at = bytes.lastIndexOf(Buffer.from('IMGDMNF1')) // the note; libimgdump's .rodata holds the magic too
    assert.ok(at > 0)
    bytes[at + 30] ^= 0xff // inside the generation field
    const bad = join(dir, 'corrupt2.img')
    execFileSync('cp', [image, bad])
    const fd = openSync(bad, 'r+')
    writeSync(fd, bytes.subarray(at + 30, at + 31), 0, 1, at + 30)
    closeSync(fd)
    const r = runKv(bad, ['get c'])
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /its manifest is corrupt \(checksum mismatch\)/)
  })
})
