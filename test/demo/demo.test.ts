/**
 * `imgdump demo` end to end on a small world: the command builds the Lisp, saves, restores,
 * compares answers and saves generation 2 with 'exec; its --json result is checked here and
 * the image it left is executed independently.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {rmSync} from 'node:fs'
import {join} from 'node:path'
import {CLI, tempDir} from '../cycle/kv-harness.js'

describe('imgdump demo', function () {
  let dir: string
  before(() => { dir = tempDir('imgdump-demo-') })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('saves and restores the bundled Lisp world with the same answers (--json)', function () {
    const r = spawnSync(process.execPath, [CLI, 'demo', '--dir', dir, '--records', '3000', '--restore-runs', '2', '--json'], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr + r.stdout)
    const result = JSON.parse(r.stdout)
    assert.equal(result.records, 3000)
    assert.ok(result.heapBytes > 1e6, `heap ${result.heapBytes}`)
    assert.equal(result.queries.length, 5)
    for (const q of result.queries) assert.equal(q.restored, q.cold, q.query)
    assert.match(result.queries[0].restored, /^\(\(cities 3000\) /)
    assert.deepEqual(result.generation2, {...result.generation2, generation: 2, changePresent: true})
    const g2 = spawnSync(join(dir, 'world-2.img'), ['-p', '(image-generation)', '-p', '(car (world-summary))'], {encoding: 'utf8', env: {...process.env, IMGDUMP_CLI: CLI}})
    assert.equal(g2.status, 0, g2.stderr)
    assert.equal(g2.stdout, '2\n(cities 3000)\n')
  })

  it('prints a table for people', function () {
    const r = spawnSync(process.execPath, [CLI, 'demo', '--dir', dir, '--records', '500', '--restore-runs', '1'], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /cold start .*\n.*save image .*MB\/s\n.*restore .*faster than the cold start\n.*same answers after restore +yes/)
  })
})
