/**
 * The runtime-author guide's example is real: compiled exactly as the guide says (with the
 * flags of `imgdump config`), saved, and restored by the kernel.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {readFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {CLI, REPO, buildNative, tempDir} from '../cycle/kv-harness.js'

describe('docs/runtime-authors.md example (counter.c)', function () {
  let dir: string
  before(function () {
    buildNative()
    dir = tempDir('imgdump-guide-')
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('builds with `imgdump config --cflags --libs`, saves with IMGDUMP_EXIT and restores', function () {
    const flags = execFileSync(process.execPath, [CLI, 'config', '--cflags', '--libs'], {encoding: 'utf8'}).trim().split(/\s+/)
    execFileSync('cc', [join(REPO, 'docs/examples/counter.c'), ...flags, '-o', join(dir, 'counter')])
    const env = {...process.env, IMGDUMP_CLI: CLI}
    const first = spawnSync(join(dir, 'counter'), ['apple', 'pear', 'save'], {cwd: dir, env, encoding: 'utf8'})
    assert.equal(first.status, 0, first.stderr)
    assert.equal(first.stdout, 'generation 0, run 1: pear apple\n')
    const second = spawnSync(join(dir, 'counter.img'), ['plum'], {cwd: dir, env, encoding: 'utf8'})
    assert.equal(second.status, 0, second.stderr)
    assert.equal(second.stdout, 'generation 1, run 2: plum pear apple\n')
  })

  it('the guide shows the commands the example documents', function () {
    const guide = readFileSync(join(REPO, 'docs/runtime-authors.md'), 'utf8')
    const example = readFileSync(join(REPO, 'docs/examples/counter.c'), 'utf8')
    assert.match(guide, /examples\/counter\.c/)
    assert.match(example, /cc counter\.c \$\(imgdump config --cflags --libs\) -o counter/)
    assert.match(guide, /generation 1, run 2: plum pear apple/)
  })
})
