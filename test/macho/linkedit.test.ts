/**
 * __LINKEDIT re-layout: pieces that grow or shrink shift everything after them, every other
 * piece keeps its bytes (judged by llvm-nm-16, llvm-objdump-16 and openssl).
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {signAdhoc, stripSignature} from '../../src/macho/code-signature.js'
import {decodeRebase, encodeRebase} from '../../src/macho/dyld-opcodes.js'
import {linkeditSegment, relayoutLinkedit} from '../../src/macho/linkedit-layout.js'
import {findCommand, readFileRange} from '../../src/macho/model.js'
import {readMacho} from '../../src/macho/read.js'
import {verifyMachoImage} from '../../src/image/macho-verify.js'
import {writeMacho} from '../../src/macho/write.js'
import {FIXTURES, objdump, opensslPageHashes, readFixture, run, storedPageHashes} from './judges.js'

describe('Mach-O __LINKEDIT re-layout', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'imgdump-linkedit-')) })
  after(() => rmSync(dir, {recursive: true, force: true}))

  for (const name of ['arm64-classic-signed-pad', 'x86_64-classic-signed-nopad']) {
    for (const grow of [true, false]) {
      it(`${name}: a rebase stream that ${grow ? 'grows' : 'shrinks'} shifts the later pieces, all else intact`, () => {
        const orig = FIXTURES + name
        const m = readMacho(readFixture(name))
        const s = stripSignature(m)
        const info = findCommand(m, 'dyld_info')!
        const rebases = decodeRebase(readFileRange(m, BigInt(info.f.rebase_off), BigInt(info.f.rebase_size)))
        // Growing: the same rebases behind 40 no-op SET_TYPE_IMM(POINTER) opcodes; shrinking: the last one dropped.
        const stream = grow ? Buffer.concat([Buffer.alloc(40, 0x11), encodeRebase(rebases)]) : encodeRebase(rebases.slice(0, -1))
        if (grow) assert.ok(stream.length > info.f.rebase_size)
        const le = linkeditSegment(m)
        const oldSymoff = findCommand(m, 'symtab')!.f.symoff
        relayoutLinkedit(m, le.f.fileoff, le.f.vmaddr, new Map([['rebase', stream]]))
        assert.equal((findCommand(m, 'symtab')!.f.symoff - oldSymoff) % 8, 0)
        signAdhoc(m, {identifier: s.identifier!, pageSizeLog2: s.pageSizeLog2})
        const buf = writeMacho(m)
        const out = join(dir, `${name}-${grow}`)
        writeFileSync(out, buf)
        assert.deepEqual(verifyMachoImage(buf, {requireSignature: true}).problems, [])
        assert.equal(run('llvm-nm-16', ['-m', out]), run('llvm-nm-16', ['-m', orig]))
        for (const flag of ['--bind', '--lazy-bind', '--exports-trie']) assert.equal(objdump(out, flag), objdump(orig, flag), flag)
        const rows = (f: string) => objdump(f, '--rebase').split('\n').filter(l => /^__/.test(l))
        assert.deepEqual(rows(out), grow ? rows(orig) : rows(orig).slice(0, -1))
        const {hashes, pageSize, codeLimit} = storedPageHashes(out, buf)
        assert.deepEqual(opensslPageHashes(buf, codeLimit, pageSize), hashes)
      })
    }
  }
})
