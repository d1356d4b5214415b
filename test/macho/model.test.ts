/**
 * The Mach-O model on every committed fixture: round trips serialised from parsed fields,
 * agreement with llvm-otool-16, llvm-objdump-16 and the npm `macho` parser, layout
 * invariants, and strip-then-re-sign reproducing ld64.lld's signature byte for byte.
 */
import assert from 'node:assert/strict'
import {readChainedFixups, writeChainedFixups, layoutChainedFixups} from '../../src/macho/chained-fixups.js'
import {readSignature, signAdhoc, stripSignature, verifySignature} from '../../src/macho/code-signature.js'
import {LC} from '../../src/macho/definitions.js'
import {readFat, writeFat} from '../../src/macho/fat.js'
import {cloneMacho, findCommand, readFileRange, segmentCommands} from '../../src/macho/model.js'
import {readMacho} from '../../src/macho/read.js'
import {checkFixups, checkLayout} from '../../src/macho/verify.js'
import {verifyMachoImage} from '../../src/image/macho-verify.js'
import {writeMacho} from '../../src/macho/write.js'
import {decodeBind, decodeLazyBind, decodeRebase, encodeBind, encodeRebase} from '../../src/macho/dyld-opcodes.js'
import {describeMachoImage, renderMachoImageText} from '../../src/image/macho-describe.js'
import {readExportsTrie, readSymbols} from '../../src/macho/symbols.js'
import {chainedFixups, FIXTURES, fixtureNames, npmMacho, objdump, opensslPageHashes, otoolCommands, otoolSegments, readFixture, run, sectionBytes, storedPageHashes} from './judges.js'

const names = fixtureNames()

describe('Mach-O fixtures (fixtures/macho/build.sh)', () => {
  it('cover the whole matrix plus a fat file', () => {
    assert.equal(names.length, 18)
    assert.ok(names.includes('arm64-classic-signed-pad-lld14') && names.includes('x86_64-classic-signed-pad-lld14'))
    for (const a of ['arm64', 'x86_64']) for (const f of ['classic', 'chained']) for (const s of ['signed', 'unsigned']) for (const p of ['pad', 'nopad']) {
      assert.ok(names.includes(`${a}-${f}-${s}-${p}`), `${a}-${f}-${s}-${p}`)
    }
    const fat = readFat(readFixture('fat.macho'))
    assert.deepEqual(fat.slices.map(s => s.cputype), [0x01000007, 0x0100000c])
  })

  it('are reproduced byte for byte by build.sh from the committed sources', async () => {
    const {mkdtempSync, readdirSync, readFileSync, rmSync} = await import('node:fs')
    const {tmpdir} = await import('node:os')
    const {join} = await import('node:path')
    const {spawnSync} = await import('node:child_process')
    const out = mkdtempSync(join(tmpdir(), 'imgdump-macho-fixtures-'))
    try {
      const r = spawnSync('sh', [join(FIXTURES, '..', 'build.sh')], {env: {...process.env, OUT: out}, encoding: 'utf8'})
      assert.equal(r.status, 0, r.stderr)
      assert.deepEqual(readdirSync(out).sort(), [...names, 'fat.macho'].sort())
      for (const f of readdirSync(out)) assert.ok(readFileSync(join(out, f)).equals(readFixture(f)), f)
    } finally { rmSync(out, {recursive: true, force: true}) }
  })
})

describe('Mach-O model', () => {
  for (const name of names) {
    describe(name, () => {
      const buf = readFixture(name)
      const file = FIXTURES + name

      it('round-trips byte for byte from parsed fields (fresh model, field edited and edited back)', () => {
        const m = cloneMacho(readMacho(buf))
        assert.ok(writeMacho(m).equals(buf))
        const text = segmentCommands(m).find(s => s.f.segname === '__TEXT')!
        text.f.vmsize += 0x1000n
        assert.ok(!writeMacho(m).equals(buf))
        text.f.vmsize -= 0x1000n
        assert.ok(writeMacho(m).equals(buf))
      })

      it('agrees with llvm-otool-16 -l on every load command and segment', () => {
        const m = readMacho(buf)
        const oc = otoolCommands(file)
        assert.deepEqual(m.commands.map(c => c.f.cmd >>> 0), oc.map(c => LC[c.cmd as keyof typeof LC] >>> 0))
        const os = otoolSegments(file)
        assert.deepEqual(segmentCommands(m).map(s => ({segname: s.f.segname, vmaddr: s.f.vmaddr, vmsize: s.f.vmsize, fileoff: s.f.fileoff, filesize: s.f.filesize,
          sections: s.sections.map(x => ({sectname: x.sectname, addr: x.addr, size: x.size, offset: x.offset}))})), os)
        const xtra = os.find(s => s.segname === '__XTRA')!
        assert.ok(xtra.vmsize > xtra.filesize, 'linker-made segment with vmsize > filesize')
        const sym = oc.find(c => c.cmd === 'LC_SYMTAB')!
        const ours = findCommand(m, 'symtab')!
        assert.equal(ours.f.symoff, Number(sym.fields.symoff))
        assert.equal(ours.f.stroff, Number(sym.fields.stroff))
      })

      it('reads symbols like llvm-nm-16, exports like llvm-objdump-16 --exports-trie, section bytes like -s', () => {
        const m = readMacho(buf)
        const nm = run('llvm-nm-16', ['-a', '-p', file]).trim().split('\n').map(l => { const p = l.trim().split(/\s+/); return [p.length === 3 ? BigInt('0x' + p[0]) : null, p[p.length - 1]] })
        const ours = readSymbols(m).map(s => [(s.n_type & 0x0e) === 0 ? null : s.n_value, s.name])
        assert.deepEqual(ours, nm)
        const di = findCommand(m, 'dyld_info')
        const et = findCommand(m, 'linkedit_data', LC.LC_DYLD_EXPORTS_TRIE)
        const trie = di ? readFileRange(m, BigInt(di.f.export_off), BigInt(di.f.export_size)) : readFileRange(m, BigInt(et!.f.dataoff), BigInt(et!.f.datasize))
        const base = segmentCommands(m).find(s => s.f.segname === '__TEXT')!.f.vmaddr
        const exports = readExportsTrie(trie).map(e => `0x${(base + e.address!).toString(16).toUpperCase()}  ${e.name}`)
        const judge = objdump(file, '--exports-trie').split('\n').filter(l => /^0x/.test(l)).map(l => l.replace(/^0x([0-9a-fA-F]+)/, (_, h) => `0x${h.toUpperCase()}`))
        assert.deepEqual([...exports].sort(), [...judge].sort()) // llvm-objdump lists a node's children before the node
        assert.ok(exports.length >= 10)
        const sections = sectionBytes(file)
        for (const s of segmentCommands(m).flatMap(x => x.sections)) {
          if (s.offset === 0) continue
          assert.ok(readFileRange(m, BigInt(s.offset), s.size).equals(sections.get(`${s.segname},${s.sectname}`)!), `${s.segname},${s.sectname}`)
        }
      })

      it('agrees with the npm macho parser (except its fileoff)', () => {
        const n = npmMacho(buf)
        const m = readMacho(buf)
        assert.equal(n.ncmds, m.header.ncmds)
        const segs = n.cmds.filter((c: any) => c.type === 'segment_64')
        assert.deepEqual(segs.map((s: any) => [s.name, BigInt(s.vmaddr), BigInt(s.vmsize), BigInt(s.filesize), s.sections.map((x: any) => [x.sectname, x.offset])]),
          segmentCommands(m).map(s => [s.f.segname, s.f.vmaddr, s.f.vmsize, s.f.filesize, s.sections.map(x => [x.sectname, x.offset])]))
      })

      it('satisfies the layout invariants', () => {
        const m = readMacho(buf)
        assert.deepEqual(checkLayout(m, BigInt(buf.length)), [])
        assert.deepEqual(checkFixups(m), [])
        assert.deepEqual(verifyMachoImage(buf), {ok: true, problems: []})
      })

      if (name.includes('chained')) {
        it('parses chained fixups like llvm-objdump-16 and re-lays them out exactly as ld64.lld', () => {
          const m = readMacho(buf)
          const lc = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)!
          const blob = readFileRange(m, BigInt(lc.f.dataoff), BigInt(lc.f.datasize))
          const cf = readChainedFixups(blob)
          const judge = chainedFixups(file)
          assert.equal(cf.segments.length, judge.segCount)
          const ours = Object.fromEntries(cf.segments.flatMap((s, i) => (s ? [[segmentCommands(m)[i].f.segname, s.pageStarts]] : [])))
          assert.deepEqual(ours, judge.pages)
          assert.ok(writeChainedFixups(cf).equals(blob))
          layoutChainedFixups(cf)
          assert.ok(writeChainedFixups(cf).equals(blob))
        })
      } else {
        it('decodes rebase/bind opcodes like llvm-objdump-16 and re-encodes them losslessly', () => {
          const m = readMacho(buf)
          const di = findCommand(m, 'dyld_info')!
          const rebases = decodeRebase(readFileRange(m, BigInt(di.f.rebase_off), BigInt(di.f.rebase_size)))
          const binds = decodeBind(readFileRange(m, BigInt(di.f.bind_off), BigInt(di.f.bind_size)))
          const segs = segmentCommands(m)
          const addr = (e: {segment: number; offset: bigint}) => `0x${(segs[e.segment].f.vmaddr + e.offset).toString(16).toUpperCase()}`
          const rebaseLines = objdump(file, '--rebase').split('\n').filter(l => /^__/.test(l)).map(l => l.split(/\s+/)[2])
          assert.deepEqual(rebases.map(addr), rebaseLines)
          const bindLines = objdump(file, '--bind').split('\n').filter(l => /^__/.test(l)).map(l => { const p = l.split(/\s+/); return `${p[2].toLowerCase()} ${p[p.length - 1]}` })
          assert.deepEqual(binds.map(x => `${addr(x).toLowerCase()} ${x.symbol}`), bindLines)
          assert.ok(bindLines.length >= 3)
          const lazy = decodeLazyBind(readFileRange(m, BigInt(di.f.lazy_bind_off), BigInt(di.f.lazy_bind_size)))
          const lazyLines = objdump(file, '--lazy-bind').split('\n').filter(l => /^__/.test(l)).map(l => { const p = l.split(/\s+/); return `${p[2].toLowerCase()} ${p[p.length - 1]}` })
          assert.deepEqual(lazy.map(x => `${addr(x).toLowerCase()} ${x.symbol}`), lazyLines)
          assert.ok(lazyLines.length >= 1)
          assert.deepEqual(decodeRebase(encodeRebase(rebases)), rebases)
          assert.deepEqual(decodeBind(encodeBind(binds)), binds)
        })
      }

      if (name.includes('-signed')) {
        it('has a signature whose page hashes openssl confirms, and that our verifier accepts', () => {
          const {hashes, pageSize, codeLimit} = storedPageHashes(file, buf)
          assert.deepEqual(opensslPageHashes(buf, codeLimit, pageSize), hashes)
          assert.deepEqual(verifySignature(buf, readMacho(buf)), [])
          const sig = readSignature(readMacho(buf))!
          assert.equal(sig.directories[0].identifier, name)
        })

        it('strip-then-re-sign reproduces the linker signature byte for byte', () => {
          const m = readMacho(buf)
          const s = stripSignature(m)
          const stripped = writeMacho(m)
          assert.equal(stripped.length < buf.length, true)
          assert.equal(findCommand(readMacho(stripped), 'linkedit_data', LC.LC_CODE_SIGNATURE), undefined)
          signAdhoc(m, {identifier: s.identifier!, pageSizeLog2: s.pageSizeLog2})
          assert.ok(writeMacho(m).equals(buf))
        })
      } else {
        it('signs ad hoc with a fresh directory that openssl confirms', () => {
          const m = readMacho(buf)
          signAdhoc(m, {identifier: 'fresh'})
          const out = writeMacho(m)
          assert.deepEqual(verifySignature(out, readMacho(out)), [])
          const cd = readSignature(readMacho(out))!.directories[0]
          assert.equal(2 ** cd.f.pageSize, name.startsWith('arm64') ? 16384 : 4096)
          const hashes = cd.codeHashes.map(h => h.toString('hex'))
          assert.deepEqual(opensslPageHashes(out, cd.f.codeLimit, 2 ** cd.f.pageSize), hashes)
        })
      }
    })
  }

  it('fat file: round trip, slices parse, describe and verify per --arch', () => {
    const buf = readFixture('fat.macho')
    const fat = readFat(buf)
    assert.ok(writeFat(readFat(buf)).equals(buf))
    for (const s of fat.slices) assert.ok(writeMacho(readMacho(s.bytes)).equals(s.bytes))
    assert.ok(fat.slices[1].bytes.equals(readFixture('arm64-chained-signed-pad')))
    const d = describeMachoImage(buf, {arch: 'arm64'})
    assert.equal(d.format, 'fat')
    assert.deepEqual(d.slices.map(s => s.arch), ['arm64'])
    assert.equal(d.slices[0].signature?.identifier, 'arm64-chained-signed-pad')
    assert.match(renderMachoImageText('fat.macho', describeMachoImage(buf)), /x86_64: .*\n[\s\S]*arm64: /)
    assert.deepEqual(verifyMachoImage(buf, {arch: 'x86_64'}), {ok: true, problems: []})
    assert.throws(() => describeMachoImage(buf, {arch: 'ppc'}), /no ppc slice/)
    assert.throws(() => readMacho(buf), (e: any) => e.code === 'MACHO_BAD_MAGIC' && /--arch/.test(e.message))
  })
})

describe('Mach-O load commands the fixtures lack', () => {
  it('LC_SOURCE_VERSION, LC_NOTE, LC_RPATH, LC_VERSION_MIN_MACOSX, LC_LOAD_WEAK_DYLIB and an unknown command round-trip and read back in llvm-otool-16', async () => {
    const {insertCommand} = await import('../../src/macho/model.js')
    const {mkdtempSync, rmSync, writeFileSync} = await import('node:fs')
    const {tmpdir} = await import('node:os')
    const {join} = await import('node:path')
    const m = readMacho(readFixture('x86_64-classic-unsigned-pad'))
    insertCommand(m, {kind: 'source_version', f: {cmd: LC.LC_SOURCE_VERSION, cmdsize: 16, version: (1n << 40n) | (2n << 30n)}})
    insertCommand(m, {kind: 'note', f: {cmd: LC.LC_NOTE, cmdsize: 40, data_owner: 'imgdump', offset: 0x1000n, size: 16n}})
    insertCommand(m, {kind: 'string', f: {cmd: LC.LC_RPATH, cmdsize: 32, name: 12}, text: '@loader_path/lib'})
    insertCommand(m, {kind: 'version_min', f: {cmd: LC.LC_VERSION_MIN_MACOSX, cmdsize: 16, version: 0x0a0f00, sdk: 0x0b0000}})
    insertCommand(m, {kind: 'dylib', f: {cmd: LC.LC_LOAD_WEAK_DYLIB, cmdsize: 48, name: 24, timestamp: 2, current_version: 0x10000, compatibility_version: 0x10000}, path: '/usr/lib/libz.1.dylib'})
    insertCommand(m, {kind: 'opaque', f: {cmd: 0x7777, cmdsize: 16}, bytes: Buffer.from('7777000010000000deadbeefcafef00d', 'hex')})
    const out = writeMacho(m)
    const again = readMacho(out)
    assert.deepEqual(again.commands.slice(-6).map(c => c.kind), ['source_version', 'note', 'string', 'version_min', 'dylib', 'opaque'])
    assert.ok(writeMacho(cloneMacho(again)).equals(out))
    const dir = mkdtempSync(join(tmpdir(), 'imgdump-lc-'))
    try {
      writeFileSync(join(dir, 'x'), out)
      const oc = otoolCommands(join(dir, 'x'))
      assert.equal(oc.find(c => c.cmd === 'LC_SOURCE_VERSION')?.fields.version, '1.2')
      assert.equal(oc.find(c => c.cmd === 'LC_NOTE')?.fields.data_owner, 'imgdump')
      assert.match(oc.find(c => c.cmd === 'LC_RPATH')?.fields.path ?? '', /^@loader_path\/lib/)
      assert.match(oc.find(c => c.cmd === 'LC_LOAD_WEAK_DYLIB')?.fields.name ?? '', /^\/usr\/lib\/libz\.1\.dylib/)
      assert.equal(oc.find(c => c.cmd === 'LC_VERSION_MIN_MACOSX')?.fields.version, '10.15')
    } finally { rmSync(dir, {recursive: true, force: true}) }
  })
})
