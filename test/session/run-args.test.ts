/** `imgdump run` hands the runtime its arguments verbatim, in order, flags included. */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {join, resolve} from 'node:path'

const CLI = join(resolve(import.meta.dirname, '../..'), 'bin/run.js')

describe('imgdump run argument passing', function () {
  it('keeps flag-like arguments after `--` in their order, with and without --name', function () {
    for (const pre of [[], ['--name', 'args-test']]) {
      const r = spawnSync(process.execPath, [CLI, 'run', ...pre, '--', '/usr/bin/printf', '%s|', '-e', 'A', '-e', 'B', '-p', 'x', '--', 'y'], {encoding: 'utf8'})
      assert.equal(r.status, 0, r.stderr)
      assert.equal(r.stdout, '-e|A|-e|B|-p|x|--|y|')
    }
  })
})
