/**
 * The verifier must catch what a broken writer would produce, and bad input must give a
 * typed error, never a crash or a hang.
 */
import assert from 'node:assert/strict'
import {ImgdumpError} from '../../src/errors.js'
import {LC} from '../../src/macho/definitions.js'
import {readChainedFixups} from '../../src/macho/chained-fixups.js'
import {findCommand, findSegment, readFileRange} from '../../src/macho/model.js'
import {readMacho} from '../../src/macho/read.js'
import {readFat} from '../../src/macho/fat.js'
import {verifyMachoImage} from '../../src/image/macho-verify.js'
import {writeMacho} from '../../src/macho/write.js'
import {describeMachoImage} from '../../src/image/macho-describe.js'
import {readSignature} from '../../src/macho/code-signature.js'
import {readFixture} from './judges.js'
import {buildMachoImage} from '../../src/image/macho-image.js'
import {encodeManifest} from '../../src/image/manifest.js'
import {buildTestImage, type TestImage} from './test-image.js'

const problemsOf = (b: Buffer): string[] => verifyMachoImage(b, {requireSignature: true}).problems

for (const name of ['arm64-chained-signed-pad', 'x86_64-classic-unsigned-pad']) {
  describe(`Mach-O verifier mutations (${name})`, () => {
    let t: TestImage
    before(() => { t = buildTestImage(name) })

    it('accepts the unmutated image', () => assert.deepEqual(problemsOf(t.image), []))

    it('catches a flipped payload byte (manifest CRC and page hash)', () => {
      const heap = findSegment(readMacho(t.image), '__IMGHEAP0')!
      const b = Buffer.from(t.image)
      b[Number(heap.f.fileoff) + 1000] ^= 0x01
      const p = problemsOf(b)
      assert.ok(p.some(x => /^payload at 0x[0-9a-f]+ \(\+0x[0-9a-f]+, memory\): CRC32C/.test(x)), p.join('\n'))
      assert.ok(p.some(x => /page \d+ .* hash mismatch/.test(x)), p.join('\n'))
    })

    it('catches a damaged byte the undo log restores (patched payload CRC)', () => {
      const b = Buffer.from(t.image)
      b[40] ^= 0x80 // inside the load commands, restored by the undo log
      const p = problemsOf(b)
      assert.ok(p.some(x => /^payload at 0x0 \(\+0x[0-9a-f]+, patched\): CRC32C/.test(x)), p.join('\n'))
    })

    it('catches an unshifted symtab / strtab offset', () => {
      const before = findCommand(readMacho(t.original), 'symtab')!
      for (const field of ['symoff', 'stroff'] as const) {
        const m = readMacho(t.image)
        findCommand(m, 'symtab')!.f[field] = before.f[field]
        const p = problemsOf(writeMacho(m))
        assert.ok(p.some(x => new RegExp(`${field === 'symoff' ? 'symtab' : 'strtab'} at \\d+\\+\\d+ outside __LINKEDIT`).test(x)), p.join('\n'))
      }
    })

    it('catches overlapping and mis-aligned linkedit content', () => {
      const m = readMacho(t.image)
      const st = findCommand(m, 'symtab')!
      st.f.symoff += 4
      const p = problemsOf(writeMacho(m))
      assert.ok(p.some(x => /mis-aligned LINKEDIT content symtab/.test(x)), p.join('\n'))
      const m2 = readMacho(t.image)
      const st2 = findCommand(m2, 'symtab')!
      st2.f.stroff = st2.f.symoff + 16
      assert.ok(problemsOf(writeMacho(m2)).some(x => /LINKEDIT overlap of symtab and strtab/.test(x)))
    })

    it('catches overlapping segments', () => {
      const m = readMacho(t.image)
      findSegment(m, '__IMGHEAP0')!.f.vmaddr = findSegment(m, '__DATA')!.f.vmaddr
      const p = problemsOf(writeMacho(m))
      assert.ok(p.some(x => /overlaps .* in memory/.test(x)), p.join('\n'))
      const m2 = readMacho(t.image)
      findSegment(m2, '__IMGHEAP0')!.f.fileoff = findSegment(m2, '__XTRA')!.f.fileoff
      assert.ok(problemsOf(writeMacho(m2)).some(x => /overlaps .* in the file/.test(x)))
    })

    it('catches an undo log that no longer reconstructs the original', () => {
      const b = Buffer.from(t.image)
      b[Number(findSegment(readMacho(t.image), '__TEXT')!.sections[0].offset) + 3] ^= 0x10
      assert.ok(problemsOf(b).some(x => /undo log does not reconstruct/.test(x)))
    })

    it('catches segments out of load-command order (dyld refuses them)', () => {
      const m = readMacho(t.image)
      const i = m.commands.findIndex(c => c.kind === 'segment' && c.f.segname === '__IMGHEAP0')
      ;[m.commands[i - 1], m.commands[i]] = [m.commands[i], m.commands[i - 1]]
      const p = problemsOf(writeMacho(m))
      assert.ok(p.some(x => /segment '__XTRA' file offset out of order/.test(x)), p.join('\n'))
      assert.ok(p.some(x => /segment '__XTRA' vm address out of order/.test(x)), p.join('\n'))
    })

    it('refuses a segment name that already exists', () => {
      assert.throws(() => buildMachoImage(t.original, [{name: '__DATA', address: 0x400000000n, memSize: 0x4000n, payload: Buffer.alloc(8)}], Buffer.alloc(0)),
        (e: any) => e.code === 'MACHO_BAD_LAYOUT' && /already exists/.test(e.message))
    })

    it('refuses a heap run below the executable (dyld wants ascending addresses)', () => {
      assert.throws(() => buildMachoImage(t.original, [{name: '__H', address: 0x4000n, memSize: 0x4000n, payload: Buffer.alloc(8)}], Buffer.alloc(0)),
        (e: any) => e.code === 'MACHO_BAD_LAYOUT' && /ascending segment addresses/.test(e.message))
    })

    it('catches a wrong page hash', () => {
      const m = readMacho(t.image)
      const lc = findCommand(m, 'linkedit_data', LC.LC_CODE_SIGNATURE)!
      const cd = readSignature(m)!.directories[0]
      const b = Buffer.from(t.image)
      b[lc.f.dataoff + cd.offset + cd.f.hashOffset + 32 * 2] ^= 0xff
      const p = problemsOf(b)
      assert.deepEqual(p.filter(x => /hash mismatch/.test(x)).length, 1)
      assert.match(p.join('\n'), /page 2 \(file offset \d+\) hash mismatch/)
    })

    if (name.includes('classic')) {
      it('catches a rebase that targets past its segment', () => {
        const m = readMacho(t.image)
        const info = findCommand(m, 'dyld_info')!
        const segs = m.commands.filter(c => c.kind === 'segment')
        // SET_SEGMENT_AND_OFFSET_ULEB(__DATA, huge), DO_REBASE_IMM_TIMES(1), DONE
        const bad = Buffer.from([0x11, 0x20 | segs.findIndex(c => c.kind === 'segment' && c.f.segname === '__DATA'), 0xff, 0xff, 0x3f, 0x51, 0x00, 0x00])
        const b = Buffer.from(t.image)
        bad.copy(b, info.f.rebase_off)
        assert.ok(problemsOf(b).some(x => /rebase entry targets segment \d+ offset 0x[0-9a-f]+ outside any segment/.test(x)), problemsOf(b).join('\n'))
      })
    }

    if (name.includes('chained')) {
      it('catches a stale seg_count', () => {
        const m = readMacho(t.image)
        const lc = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)!
        const cf = readChainedFixups(readFileRange(m, BigInt(lc.f.dataoff), BigInt(lc.f.datasize)))
        const b = Buffer.from(t.image)
        b.writeUInt32LE(cf.segments.length - 2, lc.f.dataoff + cf.header.starts_offset)
        const p = problemsOf(b)
        assert.ok(p.some(x => /seg_count \d+ != \d+ segments/.test(x)), p.join('\n'))
      })
    }
  })
}

describe('Mach-O malformed input', () => {
  const typed = (f: () => unknown): void => {
    try { f() } catch (e) { if (!(e instanceof ImgdumpError)) throw e }
  }

  it('truncations give typed errors, and verify reports instead of throwing', () => {
    const buf = readFixture('x86_64-chained-signed-pad')
    for (let n = 0; n < buf.length; n += n < 4096 ? 7 : 997) {
      const cut = buf.subarray(0, n)
      typed(() => readMacho(cut))
      typed(() => describeMachoImage(cut))
      const v = verifyMachoImage(cut)
      assert.ok(n === buf.length || !v.ok, `truncated at ${n} must not verify`)
    }
  })

  it('bit flips and lying header fields never crash or hang', () => {
    const buf = readFixture('arm64-classic-signed-pad')
    let seed = 12345
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(buf)
      const at = rnd(2048) // load commands are where lies hurt
      b[at] ^= 1 << rnd(8)
      typed(() => readMacho(b))
      typed(() => describeMachoImage(b))
      verifyMachoImage(b)
    }
    const huge = Buffer.from(buf)
    huge.writeUInt32LE(0xffffffff, 16) // ncmds
    assert.throws(() => readMacho(huge), (e: any) => e.code === 'MACHO_BAD_COMMAND' && e.offset === 16)
    const big = Buffer.from(buf)
    big.writeUInt32LE(0x7fffffff, 20) // sizeofcmds
    assert.throws(() => readMacho(big), (e: any) => e.code === 'MACHO_TRUNCATED')
  })

  it('lying linkedit sizes and counts give typed errors or problems, never a crash', () => {
    const base = readMacho(readFixture('arm64-classic-signed-pad'))
    const symtab = findCommand(base, 'symtab')!
    const info = findCommand(base, 'dyld_info')!
    const lies: [string, (m: ReturnType<typeof readMacho>) => void][] = [
      ['nsyms', m => { findCommand(m, 'symtab')!.f.nsyms = 0xffffffff }],
      ['strsize', m => { findCommand(m, 'symtab')!.f.strsize = 0xfffffff0 }],
      ['bind_size', m => { findCommand(m, 'dyld_info')!.f.bind_size = 0x7fffffff }],
      ['rebase_off', m => { findCommand(m, 'dyld_info')!.f.rebase_off = symtab.f.stroff + 3 }],
      ['export_off', m => { findCommand(m, 'dyld_info')!.f.export_off = info.f.rebase_off }],
      ['segment fileoff', m => { findSegment(m, '__DATA')!.f.fileoff = 0xffffffffffff0000n }],
    ]
    for (const [what, lie] of lies) {
      const m = readMacho(readFixture('arm64-classic-signed-pad'))
      lie(m)
      let b: Buffer
      try { b = writeMacho(m) } catch (e) { assert.ok(e instanceof ImgdumpError, what); continue }
      typed(() => describeMachoImage(b))
      const v = verifyMachoImage(b)
      assert.equal(v.ok, false, what)
      typed(() => buildMachoImage(b, [{name: '__H', address: 0x300000000n, memSize: 0x4000n, payload: Buffer.alloc(8)}], Buffer.alloc(0)))
    }
  })

  it('the image writer on bit-flipped runtimes: a typed error or an image that verifies', () => {
    const manifest = Buffer.from(encodeManifest({generation: 1n, createdNs: 0n, heapHeader: 0n, loadBias: 0n, stackLimit: 0n, flags: 0, format: 2,
      runtimePath: null, runtimeDigest: Buffer.alloc(32), originalSize: 0n, parentDigest: null, libraries: [], segments: [], payloads: [], undo: []}))
    let seed = 7
    const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
    let built = 0, refused = 0
    for (const name of ['arm64-chained-signed-pad', 'x86_64-classic-unsigned-pad']) {
      const buf = readFixture(name)
      for (let i = 0; i < 60; i++) {
        const b = Buffer.from(buf)
        b[rnd(1900)] ^= 1 << rnd(8) // load commands and header room
        try {
          const image = buildMachoImage(b, [{name: '__H', address: 0x300000000n, memSize: 0x4000n, payload: Buffer.alloc(100, 1)}], manifest)
          assert.deepEqual(verifyMachoImage(image, {requireSignature: true}).problems, [])
          built++
        } catch (e) {
          if (!(e instanceof ImgdumpError)) throw e
          refused++
        }
      }
    }
    assert.ok(built > 0 && refused > 0, `built ${built}, refused ${refused}`)
  })

  it('foreign and fat-with-lies inputs are refused with clear codes', () => {
    assert.throws(() => readMacho(readFixture('x86_64-chained-signed-pad').subarray(0, 3)), (e: any) => e.code === 'MACHO_TRUNCATED')
    const elf = Buffer.from('7f454c46020101000000000000000000', 'hex')
    assert.throws(() => readMacho(elf), (e: any) => e.code === 'MACHO_BAD_MAGIC')
    const fat = Buffer.from(readFixture('fat.macho'))
    fat.writeUInt32BE(1000, 4) // nfat_arch
    assert.throws(() => readFat(fat), (e: any) => e.code === 'MACHO_TRUNCATED')
    const fat2 = Buffer.from(readFixture('fat.macho'))
    fat2.writeUInt32BE(0x7fffffff, 8 + 12) // first slice size
    assert.throws(() => readFat(fat2), (e: any) => e.code === 'MACHO_TRUNCATED')
    assert.equal(verifyMachoImage(fat2).ok, false)
  })
})
