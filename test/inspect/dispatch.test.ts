/**
 * `imgdump inspect` and `imgdump verify` dispatch on the file's magic: ELF, Mach-O, fat
 * (with --arch), unknown. Checked through the CLI against llvm-objdump-16 for the Mach-O side.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

const REPO = resolve(import.meta.dirname, '../..')
const CLI = join(REPO, 'bin/run.js')
const MACHO = join(REPO, 'fixtures/macho/bin')
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], {encoding: 'utf8'})

describe('inspect and verify dispatch', function () {
  it('describes a fat file, all slices or one with --arch, agreeing with llvm-objdump-16 on the UUID', function () {
    const all = JSON.parse(cli('inspect', join(MACHO, 'fat.macho'), '--json').stdout)
    assert.equal(all.format, 'fat')
    assert.deepEqual(all.slices.map((s: {arch: string}) => s.arch).sort(), ['arm64', 'x86_64'])
    const one = JSON.parse(cli('inspect', join(MACHO, 'fat.macho'), '--arch', 'arm64', '--json').stdout)
    assert.equal(one.slices.length, 1)
    const judge = spawnSync('llvm-objdump-16', ['--macho', '--arch=arm64', '--private-headers', join(MACHO, 'fat.macho')], {encoding: 'utf8'})
    const uuid = /uuid ([0-9A-F-]+)/.exec(judge.stdout)![1].replace(/-/g, '').toLowerCase()
    assert.equal(one.slices[0].uuid, uuid)
  })

  it('verifies Mach-O files structurally and reports a damaged page hash (exit 7)', function () {
    const file = join(MACHO, 'arm64-chained-signed-pad')
    const ok = cli('verify', file)
    assert.equal(ok.status, 0, ok.stderr)
    const dir = mkdtempSync(join(tmpdir(), 'imgdump-dispatch-'))
    try {
      const bad = Buffer.from(readFileSync(file))
      bad[0x4100] ^= 0xff // inside __TEXT's code pages: its page hash no longer matches
      writeFileSync(join(dir, 'bad'), bad)
      const r = cli('verify', join(dir, 'bad'), '--json')
      assert.equal(r.status, 7)
      const report = JSON.parse(r.stdout)
      assert.equal(report.ok, false)
      assert.ok(report.problems.some((p: {message: string}) => /hash/i.test(p.message)), r.stdout)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })

  it('describes plain ELF files and refuses unknown formats with exit 4', function () {
    const elf = JSON.parse(cli('inspect', '/bin/ls', '--json').stdout)
    assert.equal(elf.format, 'elf')
    const dir = mkdtempSync(join(tmpdir(), 'imgdump-dispatch-'))
    try {
      writeFileSync(join(dir, 'text'), 'hello, not an executable\n')
      const r = cli('inspect', join(dir, 'text'))
      assert.equal(r.status, 4)
      assert.match(r.stderr, /^imgdump: error: .*not a file imgdump knows/)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
