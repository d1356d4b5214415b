/**
 * Editing Mach-O files into images, judged independently: llvm-objdump-16 / llvm-otool-16 /
 * llvm-nm-16 before and after (symbols, fixups, exports, disassembly, section bytes
 * unchanged except where intended), the npm macho parser, and openssl page hashes.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {buildMachoImage} from '../../src/image/macho-image.js'
import {decodeManifest, encodeManifest} from '../../src/image/manifest.js'
import {describeMachoImage, renderMachoImageText} from '../../src/image/macho-describe.js'
import {verifyMachoImage} from '../../src/image/macho-verify.js'
import {chainedFixups, FIXTURES, fixtureNames, npmMacho, objdump, opensslPageHashes, otoolSegments, readFixture, run, sectionBytes, storedPageHashes} from './judges.js'
import {buildTestImage, HEAP_ADDRESS, HEAP_MEMSIZE, type TestImage} from './test-image.js'

const padded = fixtureNames().filter(n => n.endsWith('-pad'))
const unpadded = fixtureNames().filter(n => n.endsWith('-nopad'))

describe('Mach-O image editing', () => {
  let dir: string
  before(() => { dir = mkdtempSync(join(tmpdir(), 'imgdump-macho-edit-')) })
  after(() => rmSync(dir, {recursive: true, force: true}))

  for (const name of padded) {
    describe(name, () => {
      let t: TestImage, out: string
      const orig = FIXTURES + name
      before(() => {
        t = buildTestImage(name)
        out = join(dir, name + '.image')
        writeFileSync(out, t.image)
      })

      it('passes the layout validator (invariants, signature, manifest CRCs)', () => {
        assert.deepEqual(verifyMachoImage(t.image, {requireSignature: true}), {ok: true, problems: []})
      })

      it('has page hashes that openssl confirms against the CodeDirectory', () => {
        const {hashes, pageSize, codeLimit} = storedPageHashes(out, t.image)
        // Kept from the linker's directory (ld64.lld: 4 KiB); fresh signatures use the arch page size.
        assert.equal(pageSize, name.includes('-signed') || name.startsWith('x86_64') ? 4096 : 16384)
        assert.equal(hashes.length, Math.ceil(codeLimit / pageSize))
        assert.deepEqual(opensslPageHashes(t.image, codeLimit, pageSize), hashes)
      })

      it('lays out segments as intended (otool): new segment holds exactly the payload, __LINKEDIT last at EOF', () => {
        const before = otoolSegments(orig), after = otoolSegments(out)
        const page = name.startsWith('arm64') ? 0x4000n : 0x1000n
        assert.deepEqual(after.map(s => s.segname), [...before.slice(0, -1).map(s => s.segname), '__IMGHEAP0', '__IMGDUMP', '__LINKEDIT'])
        const dataIndex = before.findIndex(s => s.segname === '__DATA')
        before.slice(0, -1).forEach((s, i) => {
          const a = after.find(x => x.segname === s.segname)!
          assert.equal(a.vmaddr, s.vmaddr); assert.equal(a.vmsize, s.vmsize)
          if (i < dataIndex) { assert.equal(a.fileoff, s.fileoff); assert.equal(a.filesize, s.filesize) }
          if (i > dataIndex) {
            // Moved after the re-pointed __DATA (dyld wants file order = command order), bytes unchanged.
            assert.ok(a.fileoff > after.find(x => x.segname === '__DATA')!.fileoff)
            assert.ok(t.image.subarray(Number(a.fileoff), Number(a.fileoff + a.filesize)).equals(t.original.subarray(Number(s.fileoff), Number(s.fileoff + s.filesize))))
          }
        })
        for (let i = 1; i < after.length; i++) {
          if (after[i].filesize) assert.ok(after[i].fileoff >= after[i - 1].fileoff, `file order of ${after[i].segname}`)
          assert.ok(after[i].vmaddr >= after[i - 1].vmaddr, `address order of ${after[i].segname}`)
        }
        const heap = after.find(s => s.segname === '__IMGHEAP0')!
        assert.equal(heap.vmaddr, HEAP_ADDRESS)
        assert.equal(heap.vmsize, HEAP_MEMSIZE)
        assert.ok(heap.vmsize > heap.filesize)
        assert.ok(t.image.subarray(Number(heap.fileoff), Number(heap.fileoff + heap.filesize)).equals(t.heapPayload))
        const le = after[after.length - 1]
        assert.equal(le.fileoff + le.filesize, BigInt(t.image.length))
        for (const s of after) { assert.equal(s.vmaddr % page, 0n); if (s.filesize) assert.equal(s.fileoff % page, 0n) }
        assert.ok(after.every(s => s === le || s.vmaddr + s.vmsize <= le.vmaddr))
      })

      it('shows the same load commands in llvm-objdump-16 --private-headers as in llvm-otool-16 -l', () => {
        const cmds = (text: string) => text.split('\n').filter(l => /^\s+cmd LC_/.test(l)).map(l => l.trim())
        const ph = cmds(objdump(out, '--private-headers'))
        assert.deepEqual(ph, cmds(run('llvm-otool-16', ['-l', out])))
        assert.equal(ph.filter(l => l === 'cmd LC_SEGMENT_64').length, otoolSegments(orig).length + 2)
        assert.equal(ph[ph.length - 1], 'cmd LC_CODE_SIGNATURE')
      })

      it('keeps symbols, exports and disassembly unchanged (llvm-nm-16 -m, --exports-trie, -d)', () => {
        assert.equal(run('llvm-nm-16', ['-m', out]), run('llvm-nm-16', ['-m', orig]))
        assert.equal(objdump(out, '--exports-trie'), objdump(orig, '--exports-trie'))
        assert.equal(objdump(out, '-d'), objdump(orig, '-d'))
      })

      it('changes section bytes only where intended (llvm-objdump-16 -s)', () => {
        const a = sectionBytes(orig), b = sectionBytes(out)
        for (const [sec, bytes] of a) {
          if (sec.startsWith('__DATA,')) continue
          assert.ok(b.get(sec)?.equals(bytes), `${sec} unchanged`)
        }
        const data = otoolSegments(out).find(s => s.segname === '__DATA')!
        for (const s of data.sections) {
          const rel = Number(s.addr - data.vmaddr)
          assert.ok(b.get(`__DATA,${s.sectname}`)!.equals(t.dataBytes.subarray(rel, rel + Number(s.size))), `__DATA,${s.sectname} holds the saved bytes`)
        }
        assert.ok(b.get('__IMGDUMP,__manifest')!.equals(t.manifest))
      })

      it('removes exactly the fixups into the page taken from memory', () => {
        const data = otoolSegments(orig).find(s => s.segname === '__DATA')!
        const lo = data.vmaddr + t.memory.offset, hi = lo + t.memory.length
        if (name.includes('chained')) {
          const a = chainedFixups(orig), b = chainedFixups(out)
          assert.equal(b.segCount, otoolSegments(out).length, 'seg_count true')
          assert.equal(a.segCount + 2, b.segCount)
          assert.deepEqual(b.imports, a.imports)
          const ps = name.startsWith('arm64') ? 0x4000n : 0x1000n
          const memPage = Number(t.memory.offset / ps)
          assert.notEqual(a.pages.__DATA[memPage], 65535, 'the memory page had fixups')
          assert.deepEqual(b.pages.__DATA, a.pages.__DATA.map((p, i) => (i === memPage ? 65535 : p)))
          for (const seg of Object.keys(a.pages)) if (seg !== '__DATA') assert.deepEqual(b.pages[seg], a.pages[seg])
          assert.equal(t.droppedFixups, 1)
        } else {
          const rows = (file: string, flag: string) => objdump(file, flag).split('\n').filter(l => /^__/.test(l))
          const addrOf = (l: string) => BigInt(l.split(/\s+/)[2])
          for (const flag of ['--rebase', '--bind', '--weak-bind']) {
            const a = rows(orig, flag), b = rows(out, flag)
            assert.deepEqual(b, a.filter(l => !(l.startsWith('__DATA ') && addrOf(l) >= lo && addrOf(l) < hi)), flag)
          }
          assert.equal(objdump(out, '--lazy-bind'), objdump(orig, '--lazy-bind'))
          const dropped = rows(orig, '--rebase').length + rows(orig, '--bind').length - rows(out, '--rebase').length - rows(out, '--bind').length
          assert.ok(dropped >= 1)
          assert.equal(t.droppedFixups, dropped)
        }
      })

      it('parses with the npm macho package consistently with otool (segments, sections)', () => {
        const n = npmMacho(t.image)
        const segs = n.cmds.filter((c: any) => c.type === 'segment_64')
        assert.deepEqual(segs.map((s: any) => [s.name, BigInt(s.vmaddr), BigInt(s.vmsize), BigInt(s.filesize)]),
          otoolSegments(out).map(s => [s.segname, s.vmaddr, s.vmsize, s.filesize]))
        const manifest = segs.find((s: any) => s.name === '__IMGDUMP').sections[0]
        assert.equal(manifest.sectname, '__manifest')
        assert.ok(Buffer.from(manifest.data).equals(t.manifest))
      })

      it('reconstructs the original executable from the manifest undo log', () => {
        const man = decodeManifest(t.manifest)
        assert.equal(man.originalSize, BigInt(t.original.length))
        const orig = Buffer.from(t.image.subarray(0, t.original.length))
        for (const u of man.undo) orig.set(u.original, Number(u.fileOffset))
        assert.ok(orig.equals(t.original))
      })

      it('is described by inspect with its manifest', () => {
        const d = describeMachoImage(t.image)
        const man = decodeManifest(t.manifest)
        assert.equal(d.slices[0].manifest && 'payloads' in d.slices[0].manifest ? d.slices[0].manifest.payloads : -1, man.payloads.length)
        assert.ok(man.payloads.filter(p => p.source === 'patched').length >= 1)
        assert.match(renderMachoImageText(name, d), /saved with \/usr\/lib\/libSystem\.B\.dylib at 0x0/)
        assert.equal(d.slices[0].signature?.identifier, name.includes('-signed') ? name : 'imgdump-image')
      })
    })
  }

  it('takes many heap runs (chained starts re-laid out larger; later linkedit pieces shift)', () => {
    const name = 'arm64-chained-signed-pad'
    const runs = Array.from({length: 24}, (_, i) => ({name: `__IMGHEAP${i}`, address: 0x300000000n + BigInt(i) * 0x100000n, memSize: 0x40000n,
      payload: Buffer.alloc(100 + i * 1000, i + 1)}))
    const manifest = Buffer.from(encodeManifest({generation: 1n, createdNs: 0n, heapHeader: 0n, loadBias: 0n, stackLimit: 0n, flags: 0, format: 2,
      runtimePath: null, runtimeDigest: Buffer.alloc(32), originalSize: 0n, parentDigest: null, libraries: [], segments: [], payloads: [], undo: []}))
    const image = buildMachoImage(readFixture(name), runs, manifest)
    assert.deepEqual(verifyMachoImage(image, {requireSignature: true}).problems, [])
    const out = join(dir, 'many-runs')
    writeFileSync(out, image)
    const segs = otoolSegments(out)
    assert.equal(chainedFixups(out).segCount, segs.length)
    assert.equal(segs.length, 6 + 24 + 1)
    for (const r of runs) {
      const s = segs.find(x => x.segname === r.name)!
      assert.ok(image.subarray(Number(s.fileoff), Number(s.fileoff + s.filesize)).equals(r.payload), r.name)
    }
    assert.equal(objdump(out, '--exports-trie'), objdump(FIXTURES + name, '--exports-trie'))
    assert.equal(run('llvm-nm-16', ['-m', out]), run('llvm-nm-16', ['-m', FIXTURES + name]))
    const {hashes, pageSize, codeLimit} = storedPageHashes(out, image)
    assert.deepEqual(opensslPageHashes(image, codeLimit, pageSize), hashes)
  })

  it('builds a thin image from the --arch slice of a fat runtime', () => {
    for (const arch of ['arm64', 'x86_64']) {
      const manifest = Buffer.from(encodeManifest({generation: 1n, createdNs: 0n, heapHeader: HEAP_ADDRESS, loadBias: 0n, stackLimit: 0n, flags: 0, format: 2,
        runtimePath: null, runtimeDigest: Buffer.alloc(32), originalSize: 0n, parentDigest: null, libraries: [], segments: [], payloads: [], undo: []}))
      const image = buildMachoImage(readFixture('fat.macho'), [{name: '__IMGHEAP0', address: HEAP_ADDRESS, memSize: 0x8000n, payload: Buffer.alloc(100, 7)}], manifest, {arch})
      assert.deepEqual(verifyMachoImage(image, {requireSignature: true}), {ok: true, problems: []})
      const d = describeMachoImage(image)
      assert.equal(d.format, 'mach-o')
      assert.equal(d.slices[0].arch, arch)
    }
    assert.throws(() => buildMachoImage(readFixture('fat.macho'), [], Buffer.alloc(8)), (e: any) => e.code === 'MACHO_NO_ARCH')
  })

  for (const name of unpadded) {
    it(`${name}: refused with the -headerpad advice`, () => {
      assert.throws(() => buildMachoImage(readFixture(name), [{name: '__IMGHEAP0', address: HEAP_ADDRESS, memSize: 0x4000n, payload: Buffer.alloc(16)}], Buffer.alloc(136)),
        (e: any) => e.code === 'MACHO_NO_ROOM' && e.phase === 'edit' && /-Wl,-headerpad,0x1000/.test(e.hint))
    })
  }
})
