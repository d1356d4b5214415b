/**
 * Format compatibility: the committed images of images/golden/ (made by an earlier version,
 * see golden-images.ts) must keep decoding to the same manifest, verifying, rebuilding their
 * original runtime byte for byte, and — ELF — running under the kernel. A change that breaks
 * one of these breaks images users already have on disk.
 */
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {bufferSource} from '../../src/elf/byte-source.js'
import {reconstructOriginal} from '../../src/image/original-executable.js'
import {GOLDEN_DIR, type GoldenEntry, summarise} from './golden-images.js'
import {readGoldenManifest} from './golden-read.js'

const CLI = path.resolve(import.meta.dirname, '../../bin/run.js')
const entries = JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, 'golden.json'), 'utf8')) as GoldenEntry[]

describe('golden images (images/golden): what earlier versions wrote still reads, verifies and runs', function () {
  this.timeout(60000)

  it('covers ELF and both Mach-O flavours', () => {
    assert.deepEqual(entries.map((e) => e.format).sort(), ['elf', 'macho', 'macho'])
  })

  for (const e of entries) {
    describe(e.image, () => {
      const file = path.join(GOLDEN_DIR, e.image)

      it('is the committed file (unchanged bytes)', () => {
        assert.equal(crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'), e.sha256)
      })

      it('decodes to the recorded manifest', () => {
        assert.deepEqual(summarise(readGoldenManifest(file, e.format)), e.manifest)
      })

      it('imgdump verify exits 0', function () {
        if (!fs.existsSync(path.resolve(import.meta.dirname, '../../dist/commands/verify.js'))) this.skip() // built by `npm test`'s pretest
        const r = spawnSync(process.execPath, [CLI, 'verify', file, '--json'], {encoding: 'utf8'})
        assert.equal(r.status, 0, r.stdout + r.stderr)
        assert.equal(JSON.parse(r.stdout).ok, true)
      })

      it('its undo log rebuilds the committed original runtime byte for byte', () => {
        const original = fs.readFileSync(path.resolve(GOLDEN_DIR, e.original))
        const rebuilt = reconstructOriginal(bufferSource(fs.readFileSync(file)), readGoldenManifest(file, e.format), file)
        assert.ok(rebuilt.equals(original))
      })

      if (e.format === 'elf') {
        it('the kernel runs it (pinned, as libimgdump would) and the saved state is there', () => {
          const r = spawnSync('setarch', ['-R', file], {encoding: 'utf8'})
          assert.equal(r.status, 0, r.stderr)
          assert.equal(r.stdout, e.stdout)
        })
        it('readelf reads it without a warning', () => {
          const r = spawnSync('readelf', ['-lSW', file], {encoding: 'utf8'})
          assert.equal(r.status, 0)
          assert.equal(r.stderr, '')
        })
      } else {
        it('llvm-otool-16 reads every load command, and the manifest section is where the manifest says', () => {
          const r = spawnSync('llvm-otool-16', ['-l', file], {encoding: 'utf8'})
          assert.equal(r.status, 0, r.stderr)
          assert.equal(r.stderr, '')
          assert.match(r.stdout, /sectname __manifest\s+segname __IMGDUMP/)
          for (const s of e.manifest.segments.filter((x) => x.fileSize !== '0x0')) {
            assert.match(r.stdout, new RegExp(`vmaddr 0x0*${s.address.slice(2)}\\s+vmsize 0x[0-9a-f]+\\s+fileoff ${BigInt(s.fileOffset)}\\s+filesize ${BigInt(s.fileSize)}`))
          }
        })
      }
    })
  }
})
