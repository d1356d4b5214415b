/**
 * Mach-O images through the planner/finalizer seam (planImage → runtime pwrites → finalizeImage),
 * with the test playing the runtime. Judged by llvm-objdump-16/llvm-otool-16 (segments, bytes),
 * openssl page hashes against the CodeDirectory, the layout validator and `imgdump verify`.
 */
import {crc32c} from '@node-rs/crc32'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import {ImgdumpError} from '../../src/errors.js'
import {createPendingOutput} from '../../src/image/output-file.js'
import {finalizeImage, planImage, prepareOutput} from '../../src/image/plan-image.js'
import type {ImagePlan, SaveRequest, SaveResult} from '../../src/image/save-types.js'
import {verifySignature} from '../../src/macho/code-signature.js'
import {readMacho} from '../../src/macho/read.js'
import {segmentCommands} from '../../src/macho/model.js'
import {writeMacho} from '../../src/macho/write.js'
import {dataSegmentBytes, machoDataSegments} from '../../src/image/macho-data-ranges.js'
import {verifyMachoImage} from '../../src/image/macho-verify.js'
import {chainedFixups, FIXTURES, objdump, opensslPageHashes, otoolCommands, otoolSegments, storedPageHashes} from '../macho/judges.js'
import {addressPattern as pattern, makeTempDir} from './synthetic-runtime.js'

const HEAP = 0x300000000n
const REGION = 0x400000000n
const RESERVE = 1n << 30n

function request(exe: string, target: string, page: bigint, region: boolean): SaveRequest {
  return {
    id: 1, path: target, mode: 'continue', generation: 1n, exe, loadBias: 0n, phdr: 0n,
    // ~3 pages of heap, the last one partial (the segment's vmsize rounds up).
    heap: {base: HEAP, brk: HEAP + 2n * page + 0x123n, reserve: RESERVE, header: HEAP},
    regions: region ? [{addr: REGION, size: page}] : [], libraries: [],
    pinning: {noRandomize: true, stack: 'finite', stackLimit: 8n << 20n}, origin: null,
  }
}

/** Plan, pwrite every range like the runtime, finalize; `lie` corrupts the reported CRC of write 0. */
function save(req: SaveRequest, lie = false): {plan: ImagePlan; result: SaveResult} {
  const plan = planImage(req)
  const pending = createPendingOutput(req.path)
  prepareOutput(plan, pending)
  const crcs = plan.writes.map((w) => {
    const bytes = pattern(w.addr, w.size)
    fs.writeSync(pending.fd, bytes, 0, bytes.length, Number(w.offset))
    return crc32c(bytes) >>> 0
  })
  if (lie) crcs[0] = (crcs[0] ^ 1) >>> 0
  return {plan, result: finalizeImage(plan, pending, crcs)}
}

const CASES = [
  {fixture: 'arm64-chained-signed-pad', page: 0x4000n},
  {fixture: 'x86_64-classic-signed-pad', page: 0x1000n},
]

describe('Mach-O images through planImage/finalizeImage', function () {
  this.timeout(120000)
  let dir: string
  before(() => { dir = makeTempDir() })
  after(() => fs.rmSync(dir, {recursive: true, force: true}))

  it('takes whole fixup pages of writable segments from memory, and pages with thread-local sections from the file', () => {
    const m = readMacho(fs.readFileSync(path.join(FIXTURES, 'arm64-chained-signed-pad')))
    const names = machoDataSegments(m, 0x4000n).map((d) => [d.name, d.fromMemory, d.fromFile])
    assert.deepEqual(names, [['__DATA', [{offset: 0n, length: 0xc000n}], []], ['__XTRA', [{offset: 0n, length: 0x14000n}], []]])
    // Make __XTRA,__data (page 0) a thread-local template. __zfill shares that page: refused,
    // since taking the page from the file would reset __zfill.
    const xtra = segmentCommands(m).find((s) => s.f.segname === '__XTRA')!
    xtra.sections[0].flags = 0x11 // S_THREAD_LOCAL_REGULAR
    assert.throws(() => machoDataSegments(m, 0x4000n), (e: unknown) => e instanceof ImgdumpError && e.code === 'MACHO_TLS_SHARED_PAGE' &&
      /__data and __zfill/.test(e.message) && /own 16384-byte pages/.test(e.hint ?? ''))
    // With __zfill moved to the next page, page 0 comes from the file and the rest from memory.
    xtra.sections[1].addr = xtra.f.vmaddr + 0x4000n
    xtra.sections[1].size = 0x8000n
    const d = machoDataSegments(m, 0x4000n).find((x) => x.name === '__XTRA')!
    assert.deepEqual(d.fromFile, [{offset: 0n, length: 0x4000n}])
    assert.deepEqual(d.fromMemory, [{offset: 0x4000n, length: 0x10000n}])
    const bytes = dataSegmentBytes(m, d)
    assert.equal(bytes.length, 0x14000)
    assert.ok(bytes.subarray(0x4000).equals(Buffer.alloc(0x10000)), 'zero fill past filesize')
  })

  it('without chained fixups, keeps only the thread-local sections\' bytes from the file (classic rebases/binds go word by word)', () => {
    const m = readMacho(fs.readFileSync(path.join(FIXTURES, 'x86_64-classic-signed-pad')))
    const xtra = segmentCommands(m).find((s) => s.f.segname === '__XTRA')!
    xtra.sections[0].flags = 0x11 // __data (0x28 bytes at offset 0) becomes a thread-local template; __zfill shares its page
    const d = machoDataSegments(m, 0x1000n).find((x) => x.name === '__XTRA')!
    assert.deepEqual(d.fromFile, [{offset: 0n, length: 0x28n}])
    assert.deepEqual(d.fromMemory, [{offset: 0x28n, length: xtra.f.vmsize - 0x28n}])
    // Through the pipeline: the rebase inside __XTRA,__data (thread-local now) stays, its bytes come from the file.
    const exe = path.join(dir, 'classic-tls')
    fs.writeFileSync(exe, writeMacho(m))
    const img = path.join(dir, 'classic-tls.img')
    save(request(exe, img, 0x1000n, false))
    const after = otoolSegments(img).find((s) => s.segname === '__XTRA')!
    const buf = fs.readFileSync(img)
    assert.ok(buf.subarray(Number(after.fileoff), Number(after.fileoff) + 0x28).equals(fs.readFileSync(exe).subarray(Number(xtra.f.fileoff), Number(xtra.f.fileoff) + 0x28)))
    assert.ok(buf.subarray(Number(after.fileoff) + 0x28, Number(after.fileoff + after.filesize)).equals(pattern(after.vmaddr + 0x28n, after.filesize - 0x28n)))
    const rebases = objdump(img, '--rebase').split('\n').filter((l) => l.startsWith('__XTRA'))
    assert.equal(rebases.length, 1, rebases.join('\n'))
  })

  it('refuses a save from a slid Mach-O process (saved pointers assume slide 0)', () => {
    const req = request(path.join(FIXTURES, 'arm64-chained-signed-pad'), path.join(dir, 'slid.img'), 0x4000n, false)
    assert.throws(() => planImage({...req, loadBias: 0x4000n}), (e: unknown) => e instanceof ImgdumpError && e.code === 'IMAGE_BAD_REQUEST' &&
      /_POSIX_SPAWN_DISABLE_ASLR/.test(e.hint ?? ''))
    assert.ok(!fs.existsSync(path.join(dir, 'slid.img')))
  })

  for (const c of CASES) {
    describe(c.fixture, () => {
      let img: string
      let plan: ImagePlan
      let req: SaveRequest
      before(() => {
        img = path.join(dir, `${c.fixture}.img`)
        req = request(path.join(FIXTURES, c.fixture), img, c.page, true)
        plan = save(req).plan
      })

      it('plans one write per heap run and region and one per writable segment (whole vmsize), at page-aligned offsets', () => {
        // __DATA and the linker-made __XTRA; not __DATA_CONST (read-only after dyld's fixups).
        const writable = otoolSegments(path.join(FIXTURES, c.fixture)).filter((s) => s.segname === '__DATA' || s.segname === '__XTRA')
        assert.equal(writable.length, 2)
        assert.deepEqual(plan.writes.map((w) => [w.addr, w.size]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
          [...writable.map((s) => [s.vmaddr, s.vmsize]), [HEAP, 2n * c.page + 0x123n], [REGION, c.page]])
        for (const w of plan.writes) assert.equal(w.offset % c.page, 0n)
        assert.equal(plan.headerCopy, HEAP)
      })

      it('commits the image of the planned size, and the layout validator accepts it', () => {
        const buf = fs.readFileSync(img)
        assert.equal(BigInt(buf.length), plan.fileSize)
        assert.deepEqual(verifyMachoImage(buf, {requireSignature: true}), {ok: true, problems: []})
        assert.deepEqual(verifySignature(buf, readMacho(buf)), [])
      })

      it('llvm-otool/objdump show the new segments at the right addresses and sizes', () => {
        const segs = otoolSegments(img)
        const heap = segs.find((s) => s.segname === '__IMGHEAP')!
        assert.equal(heap.vmaddr, HEAP)
        assert.equal(heap.vmsize, 3n * c.page)
        assert.equal(heap.filesize, 2n * c.page + 0x123n)
        const resv = segs.find((s) => s.segname === '__IMGRESERVE')!
        assert.equal(resv.vmaddr, HEAP + 3n * c.page)
        assert.equal(resv.vmsize, RESERVE - 3n * c.page)
        assert.equal(resv.filesize, 0n)
        // address space only: no access until the runtime grows the heap into it
        const resvCmd = otoolCommands(img).find((x) => x.cmd === 'LC_SEGMENT_64' && x.fields.segname === '__IMGRESERVE')!
        assert.equal(Number(resvCmd.fields.initprot), 0)
        const region = segs.find((s) => s.segname === '__IMGREGION0')!
        assert.deepEqual([region.vmaddr, region.vmsize, region.filesize], [REGION, c.page, c.page])
        assert.equal(segs[segs.length - 1].segname, '__LINKEDIT')
        const ph = objdump(img, '--private-headers')
        assert.match(ph, new RegExp(`segname __IMGHEAP\\s+vmaddr 0x0*${HEAP.toString(16)}\\s+vmsize 0x0*${(3n * c.page).toString(16)}`))
      })

      it('each new segment holds exactly what the runtime wrote (read at otool fileoff)', () => {
        const buf = fs.readFileSync(img)
        for (const s of otoolSegments(img).filter((x) => x.segname === '__IMGHEAP' || x.segname === '__IMGREGION0')) {
          const got = buf.subarray(Number(s.fileoff), Number(s.fileoff + s.filesize))
          assert.ok(got.equals(pattern(s.vmaddr, s.filesize)), `${s.segname} bytes differ`)
        }
      })

      it('__DATA and __XTRA are re-pointed at the saved pages; their fixups are gone, __DATA_CONST keeps its own', () => {
        const exe = path.join(FIXTURES, c.fixture)
        const buf = fs.readFileSync(img)
        const before = otoolSegments(exe)
        const after = otoolSegments(img)
        for (const name of ['__DATA', '__XTRA']) {
          const s = after.find((x) => x.segname === name)!
          const o = before.find((x) => x.segname === name)!
          assert.deepEqual([s.vmaddr, s.vmsize, s.filesize], [o.vmaddr, o.vmsize, o.vmsize], `${name}: whole vmsize from the file`)
          assert.notEqual(s.fileoff, o.fileoff)
          assert.ok(buf.subarray(Number(s.fileoff), Number(s.fileoff + s.filesize)).equals(pattern(s.vmaddr, s.vmsize)), `${name} holds memory`)
        }
        // One pass: __XTRA's new bytes follow __DATA's directly (no dead copy of its old bytes between).
        const [data, xtra] = ['__DATA', '__XTRA'].map((n) => after.find((x) => x.segname === n)!)
        assert.equal(xtra.fileoff, data.fileoff + data.filesize)
        // Zero fill inside them became regular sections with file bytes (tools show them).
        assert.match(objdump(img, '-h'), /__bss\s+0+2000 [0-9a-f]+ DATA/)
        const dc = (f: string) => otoolSegments(f).find((x) => x.segname === '__DATA_CONST')!
        assert.equal(dc(img).fileoff, dc(exe).fileoff)
        if (c.fixture.includes('chained')) {
          const a = chainedFixups(exe), b = chainedFixups(img)
          assert.equal(b.segCount, after.length, 'seg_count true')
          for (const name of ['__DATA', '__XTRA']) {
            assert.ok(a.pages[name].some((p) => p !== 65535), `${name} had fixups`)
            assert.ok(b.pages[name] === undefined || b.pages[name].every((p) => p === 65535), `${name}: no chain left`)
          }
          assert.deepEqual(b.pages.__DATA_CONST, a.pages.__DATA_CONST)
          assert.deepEqual(b.imports, a.imports)
        } else {
          const rows = (f: string, flag: string) => objdump(f, flag).split('\n').filter((l) => /^__/.test(l))
          for (const flag of ['--rebase', '--bind', '--weak-bind']) {
            const a = rows(exe, flag), b = rows(img, flag)
            assert.deepEqual(b, a.filter((l) => !/^__(DATA|XTRA) /.test(l)), flag)
          }
          assert.ok(rows(exe, '--rebase').some((l) => l.startsWith('__DATA ')), 'the original rebases __DATA')
          // Lazy binds stay: dyld applies them only when a stub is first called through its helper.
          assert.equal(objdump(img, '--lazy-bind').split('\n').slice(1).join('\n'), objdump(exe, '--lazy-bind').split('\n').slice(1).join('\n'))
        }
      })

      it('the page hashes verify with openssl against the CodeDirectory', () => {
        const buf = fs.readFileSync(img)
        const {hashes, pageSize, codeLimit} = storedPageHashes(img, buf)
        assert.equal(hashes.length, Math.ceil(codeLimit / pageSize))
        assert.deepEqual(opensslPageHashes(buf, codeLimit, pageSize), hashes)
      })

      it('imgdump verify exits 0', function () {
        const cli = path.resolve(import.meta.dirname, '../../bin/run.js')
        if (!fs.existsSync(path.resolve(import.meta.dirname, '../../dist/commands/verify.js'))) this.skip() // built by `npm test`'s pretest
        const r = spawnSync(process.execPath, [cli, 'verify', img], {encoding: 'utf8'})
        assert.equal(r.status, 0, r.stdout + r.stderr)
        const bad = path.join(dir, `${c.fixture}.flipped`)
        const buf = fs.readFileSync(img)
        for (const name of ['__IMGHEAP', '__DATA']) {
          const seg = otoolSegments(img).find((s) => s.segname === name)!
          const copy = Buffer.from(buf)
          copy[Number(seg.fileoff) + 5] ^= 0x40
          fs.writeFileSync(bad, copy)
          const v = spawnSync(process.execPath, [cli, 'verify', bad, '--json'], {encoding: 'utf8'})
          assert.notEqual(v.status, 0, `a flipped ${name} byte must fail verify`)
          assert.match(v.stdout, /PAYLOAD_CRC|SIGNATURE|HASH/i, v.stdout)
        }
      })

      it('a wrong CRC from the runtime fails with a typed error and leaves the previous image byte-identical', () => {
        const before = fs.readFileSync(img)
        const names = fs.readdirSync(dir)
        assert.throws(() => save(request(path.join(FIXTURES, c.fixture), img, c.page, false), true),
          (e: unknown) => e instanceof ImgdumpError && e.code === 'IMAGE_CRC_MISMATCH')
        assert.ok(fs.readFileSync(img).equals(before))
        assert.deepEqual(fs.readdirSync(dir), names, 'no temp file left behind')
      })

      it('saving again from the image rebuilds from the original (no layers)', () => {
        const again = path.join(dir, `${c.fixture}.again`)
        const r2 = request(img, again, c.page, false)
        save(r2)
        const segs = otoolSegments(again).map((s) => s.segname)
        assert.equal(segs.filter((n) => n === '__IMGHEAP').length, 1)
        assert.ok(!segs.includes('__IMGREGION0'))
        assert.deepEqual(verifyMachoImage(fs.readFileSync(again), {requireSignature: true}), {ok: true, problems: []})
      })
    })
  }

  it('refuses a runtime without header room with the -headerpad advice (typed edit error)', () => {
    assert.throws(() => planImage(request(path.join(FIXTURES, 'arm64-chained-signed-nopad'), path.join(dir, 'nopad.img'), 0x4000n, false)),
      (e: unknown) => e instanceof ImgdumpError && e.phase === 'edit' && e.code === 'MACHO_NO_ROOM' && /headerpad/.test(e.hint ?? ''))
    assert.ok(!fs.existsSync(path.join(dir, 'nopad.img')))
  })

  it('refuses a fat runtime with a typed error', () => {
    assert.throws(() => planImage(request(path.join(FIXTURES, 'fat.macho'), path.join(dir, 'fat.img'), 0x4000n, false)),
      (e: unknown) => e instanceof ImgdumpError && e.code === 'IMAGE_FAT_UNSUPPORTED')
  })

  it('refuses more than 2 GiB of saved bytes (the in-memory writer cap) before allocating anything', () => {
    const req = request(path.join(FIXTURES, 'x86_64-classic-signed-pad'), path.join(dir, 'big.img'), 0x1000n, false)
    req.heap = {...req.heap, brk: HEAP + (2n << 30n) + 0x1000n, reserve: 4n << 30n}
    assert.throws(() => planImage(req), (e: unknown) => e instanceof ImgdumpError && e.phase === 'edit' && e.code === 'IMAGE_TOO_LARGE')
  })

  it('refuses a heap base not aligned to the arm64 16 KiB page', () => {
    const req = request(path.join(FIXTURES, 'arm64-chained-signed-pad'), path.join(dir, 'x.img'), 0x4000n, false)
    req.heap = {...req.heap, base: HEAP + 0x1000n, header: HEAP + 0x1000n}
    assert.throws(() => planImage(req), (e: unknown) => e instanceof ImgdumpError && e.code === 'IMAGE_BAD_REQUEST')
  })
})
