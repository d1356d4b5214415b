/**
 * Incremental saves on a filesystem that shares extents (XFS, loop-mounted as root; CI
 * installs xfsprogs): the clean pages of the previous image are reflinked (FICLONERANGE), not
 * copied. Judged by the filesystem's own block count (statfs: the new image costs about its
 * written pages, not its size), by the kernel running the image (same digests as the saving
 * process), and by `imgdump verify`.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {copyFileSync, mkdirSync, rmSync, statSync, statfsSync} from 'node:fs'
import {join} from 'node:path'
import {CLI, buildKv, runKv, tempDir} from './kv-harness.js'

function sh(cmd: string, args: string[]): {ok: boolean; out: string} {
  const r = spawnSync(cmd, args, {encoding: 'utf8'})
  return {ok: r.status === 0, out: `${r.stdout}${r.stderr}${r.error?.message ?? ''}`}
}

function usedBytes(dir: string): number {
  const s = statfsSync(dir)
  return (s.blocks - s.bfree) * s.bsize
}

describe('incremental saves share extents on XFS (reflink)', function () {
  this.timeout(300_000)
  let root: string
  let mnt: string
  let bin: string

  before(function () {
    if (process.getuid?.() !== 0 || !sh('mkfs.xfs', ['-V']).ok) {
      // Root and xfsprogs are CI's (.ci/run installs them); a developer's machine may lack them.
      this.skip()
    }
    root = tempDir('imgdump-xfs-')
    mnt = join(root, 'mnt')
    mkdirSync(mnt)
    const disk = join(root, 'disk.img')
    assert.ok(sh('truncate', ['-s', '1G', disk]).ok)
    const mk = sh('mkfs.xfs', ['-q', '-f', disk])
    assert.ok(mk.ok, mk.out)
    const mount = sh('mount', ['-o', 'loop', disk, mnt])
    assert.ok(mount.ok, `mount -o loop: ${mount.out}`)
    bin = buildKv()
    copyFileSync(join(bin, 'kv-pie'), join(mnt, 'kv'))
    copyFileSync(join(bin, 'libkvx.so'), join(mnt, 'libkvx.so'))
  })

  after(() => {
    if (mnt) sh('umount', [mnt])
    if (root) rmSync(root, {recursive: true, force: true})
    if (bin) rmSync(bin, {recursive: true, force: true})
  })

  it('the second save reflinks the clean pages: disk use grows by about the written pages', () => {
    const img = join(mnt, 'r.img')
    const env = {IMGDUMP_REPORT: '1'}
    // One process: a full first save (the previous image), then 1 % of the pages written.
    const first = runKv(join(mnt, 'kv'), ['blob 96', 'scribble 20 1', `save ${img} continue`, 'digest', 'exit 0'], {env})
    assert.equal(first.status, 0, first.stderr)
    const usedAfterFirst = usedBytes(mnt)
    // Generation 2 beside the first (which stays): unshared, it would cost its whole size.
    const img2 = join(mnt, 'r2.img')
    const r = runKv(img, ['touch 1 7', 'digest', `save ${img2} continue`, 'exit 0'], {env})
    assert.equal(r.status, 0, r.stderr)
    const report = r.stderr.split('\n').find((l) => l.startsWith('imgdump: save generation 2'))
    assert.ok(report, r.stderr)
    const m = /tracking pagemap, (\d+) pages written, (\d+) from the previous image \((\d+) reflinked, (\d+) copied\)/.exec(report)
    assert.ok(m, report)
    const [written, taken, reflinked, copied] = m.slice(1).map(Number)
    assert.ok(reflinked > 20000 && reflinked === taken && copied === 0, report)
    // Both images on disk: the second costs its written pages plus headers and metadata, not
    // its size (an unshared copy would cost all of it).
    const grown = usedBytes(mnt) - usedAfterFirst
    const size = statSync(img2).size
    assert.ok(written * 4096 < size / 20 && grown < size / 10, `disk use grew by ${grown} bytes for a ${size}-byte image (${report})`)
    const before = r.stdout.split('\n').find((l) => l.startsWith('digest:'))
    const after = runKv(img2, ['digest', 'exit 0'])
    assert.equal(after.stdout.split('\n').find((l) => l.startsWith('digest:')), before)
    const v = spawnSync(process.execPath, [CLI, 'verify', img2], {encoding: 'utf8'})
    assert.equal(v.status, 0, v.stdout + v.stderr)
  })
})
