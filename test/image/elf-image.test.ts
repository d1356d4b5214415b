/**
 * ELF images end to end without the C runtime: the test plays the runtime (synthetic-runtime.ts)
 * and judges the result with readelf, gdb, sha256 of the original and the kernel running it.
 */
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {ImgdumpError} from '../../src/errors.js'
import {fdSource} from '../../src/elf/byte-source.js'
import {ElfScan} from '../../src/elf/scan.js'
import {findManifest, reconstructOriginal} from '../../src/image/original-executable.js'
import {planImage} from '../../src/image/plan-image.js'
import {verifyImage} from '../../src/image/verify-image.js'
import {describeImage} from '../../src/image/describe-image.js'
import * as S from './synthetic-runtime.js'

const {EXPECTED, memoryFor} = S

interface Variant {name: string; flags: string[]; pie: boolean}
const VARIANTS: Variant[] = [
  {name: 'nopie-lazy', flags: ['-no-pie', '-Wl,-z,lazy'], pie: false},
  {name: 'nopie-now', flags: ['-no-pie', '-Wl,-z,now'], pie: false},
  {name: 'pie-lazy', flags: ['-fPIE', '-pie', '-Wl,-z,lazy'], pie: true},
  {name: 'pie-now', flags: ['-fPIE', '-pie', '-Wl,-z,now'], pie: true},
  {name: 'pie-relr', flags: ['-fPIE', '-pie', '-Wl,-z,pack-relative-relocs'], pie: true},
  // lld puts RELRO and .data/.bss in two writable PT_LOADs: both are re-pointed.
  {name: 'lld-nopie', flags: ['-fuse-ld=lld', '-no-pie'], pie: false},
  {name: 'lld-pie', flags: ['-fuse-ld=lld', '-fPIE', '-pie'], pie: true},
]

function run(img: string, pie: boolean): string {
  // A PIE's saved pointers hold the pinned load bias: run it with randomisation off, as libimgdump would.
  const r = pie ? spawnSync('setarch', ['-R', img], {encoding: 'utf8'}) : spawnSync(img, [], {encoding: 'utf8'})
  assert.equal(r.status, 0, `${img} exited ${r.status} ${r.signal ?? ''}: ${r.stderr}`)
  return r.stdout
}

function sha256(buf: Uint8Array): string { return crypto.createHash('sha256').update(buf).digest('hex') }

function flipByte(file: string, offset: bigint): void {
  const fd = fs.openSync(file, 'r+')
  const b = Buffer.alloc(1)
  fs.readSync(fd, b, 0, 1, Number(offset))
  b[0] ^= 0x55
  fs.writeSync(fd, b, 0, 1, Number(offset))
  fs.closeSync(fd)
}

function manifestOf(img: string) {
  const fd = fs.openSync(img, 'r')
  try {
    const src = fdSource(fd)
    const found = findManifest(new ElfScan(src))!
    return {...found, original: reconstructOriginal(src, found.manifest, img)}
  } finally { fs.closeSync(fd) }
}

describe('ELF image planner and finalizer', function () {
  this.timeout(120000)
  let dir: string
  const exes = new Map<string, string>()
  const images = new Map<string, string>()

  before(() => {
    dir = S.makeTempDir()
    for (const v of VARIANTS) {
      const exe = S.compile(dir, v.name, v.flags)
      exes.set(v.name, exe)
      const img = path.join(dir, `${v.name}.img`)
      const heap = S.makeHeap(1n)
      S.saveWith(S.makeRequest(exe, img, v.pie, BigInt(heap.length)), memoryFor(exe, v.pie, heap))
      images.set(v.name, img)
    }
  })
  after(() => fs.rmSync(dir, {recursive: true, force: true}))

  for (const v of VARIANTS) {
    describe(v.name, () => {
      it('the original runs as expected without an image (control)', () => {
        assert.equal(run(exes.get(v.name)!, v.pie), 'heap=(none) counter=41 bss=0 mode=default big=0 mapped=0 tls=5,0\n')
      })

      it('the kernel runs the image: heap, .data, .bss and a reassigned pointer come back', () => {
        assert.equal(run(images.get(v.name)!, v.pie), EXPECTED)
      })

      it('readelf -lSW reads it without a warning; phdrs moved into a PT_LOAD', () => {
        const r = spawnSync('readelf', ['-lSW', images.get(v.name)!], {encoding: 'utf8'})
        assert.equal(r.status, 0)
        assert.equal(r.stderr, '')
        assert.doesNotMatch(r.stdout, /warning/i)
        const bss = /\]\s+\.bss\s+(\S+)/.exec(r.stdout)
        assert.equal(bss?.[1], 'PROGBITS', '.bss is saved data now')
        // .tbss is a TLS template size, not saved data (it shares addresses with .init_array).
        assert.equal(/\]\s+\.tbss\s+(\S+)/.exec(r.stdout)?.[1], 'NOBITS')
        const llvm = spawnSync('llvm-readobj-16', ['--program-headers', '--sections', '--notes', '--dyn-relocations', images.get(v.name)!], {encoding: 'utf8'})
        assert.equal(llvm.status, 0)
        assert.equal(llvm.stderr, '', 'llvm-readobj warns about nothing')
        // p_align of every PT_LOAD stays at the page size (a 2 MiB one would round a PIE's bias).
        for (const m of r.stdout.matchAll(/^\s+LOAD\s.*\s(0x[0-9a-f]+)$/gm)) assert.equal(m[1], '0x1000')
      })

      it('verify: ok, and the undo log rebuilds the original byte for byte', () => {
        const rep = verifyImage(images.get(v.name)!)
        assert.deepEqual(rep.problems, [])
        assert.equal(rep.ok, true)
        const {original, manifest} = manifestOf(images.get(v.name)!)
        assert.equal(sha256(original), sha256(fs.readFileSync(exes.get(v.name)!)))
        assert.equal(Buffer.from(manifest.runtimeDigest).toString('hex'), sha256(fs.readFileSync(exes.get(v.name)!)))
      })
    })
  }

  it('relocations into memory-taken words are R_X86_64_NONE and DT_RELACOUNT counts only live RELATIVE ones', () => {
    const img = images.get('pie-lazy')!
    const sym = S.symbols(exes.get('pie-lazy')!)
    const relocs = execFileSync('readelf', ['-rW', img], {encoding: 'utf8'})
    const entries = [...relocs.matchAll(/^([0-9a-f]{16})\s+[0-9a-f]{16}\s+(R_X86_64_\w+)/gm)].map((m) => ({at: BigInt('0x' + m[1]), type: m[2]}))
    const mode = entries.find((e) => e.at === sym.get('mode'))
    assert.equal(mode?.type, 'R_X86_64_NONE')
    // .init_array lies in RELRO (taken from the file): its RELATIVE relocation stays.
    const init = BigInt(/\.init_array\s+INIT_ARRAY\s+([0-9a-f]+)/.exec(execFileSync('readelf', ['-SW', img], {encoding: 'utf8'}))![1].replace(/^/, '0x'))
    assert.equal(entries.find((e) => e.at === init)?.type, 'R_X86_64_RELATIVE')
    const dyn = execFileSync('readelf', ['-dW', img], {encoding: 'utf8'})
    const count = Number(/RELACOUNT\)\s+(\d+)/.exec(dyn)![1])
    const leading = entries.findIndex((e) => e.type !== 'R_X86_64_RELATIVE')
    assert.ok(count > 0)
    assert.equal(count, leading, 'DT_RELACOUNT = number of leading RELATIVE entries')
    const orig = Number(/RELACOUNT\)\s+(\d+)/.exec(execFileSync('readelf', ['-dW', exes.get('pie-lazy')!], {encoding: 'utf8'}))![1])
    assert.ok(count < orig)
  })

  it('gdb reads saved globals from the image file without running it', () => {
    for (const name of ['nopie-now', 'pie-lazy']) {
      const out = execFileSync('gdb', ['-nx', '-batch', '-ex', 'print counter', '-ex', 'print bss_var', '-ex', 'print big_bss[5000]', images.get(name)!],
        {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
      assert.match(out, /\$1 = 42\n\$2 = 7\n\$3 = 9 '\\t'/)
    }
  })

  it('verify catches a flipped byte in every payload and anywhere in the manifest', function () {
    const base = images.get('pie-now')!
    const {manifest, offset, size} = manifestOf(base)
    const work = path.join(dir, 'flip.img')
    const check = (at: bigint, what: string) => {
      fs.copyFileSync(base, work)
      flipByte(work, at)
      const rep = verifyImage(work)
      assert.equal(rep.ok, false, `flip at ${at} (${what}) not detected`)
    }
    for (const p of manifest.payloads) {
      check(p.fileOffset, `first byte of ${p.source} payload`)
      check(p.fileOffset + p.length - 1n, `last byte of ${p.source} payload`)
      check(p.fileOffset + p.length / 2n, `middle of ${p.source} payload`)
    }
    for (let i = 0; i < size; i++) check(offset + BigInt(i), `manifest byte ${i}`)
    for (const u of manifest.undo) check(u.fileOffset, 'a patched byte of the original')
  })

  it('verify never crashes on damaged headers: every byte of the moved program header table and ELF header flipped', () => {
    const base = images.get('nopie-now')!
    const work = path.join(dir, 'hdr.img')
    const phoff = fs.readFileSync(base).readBigUInt64LE(32)
    const phnum = fs.readFileSync(base).readUInt16LE(56)
    const offsets = [...Array.from({length: 64}, (_, i) => BigInt(i)), ...Array.from({length: phnum * 56}, (_, i) => phoff + BigInt(i))]
    let detected = 0
    for (const at of offsets) {
      fs.copyFileSync(base, work)
      flipByte(work, at)
      const rep = verifyImage(work) // throws only on a bug: every problem is reported, not thrown
      if (!rep.ok) detected++
    }
    // The ELF header is covered by the digest (through the undo log) and the patched-bytes payloads,
    // the moved program header table by its own payload.
    assert.equal(detected, offsets.length, `${detected} of ${offsets.length} flips detected`)
  })

  it('verify reports a truncated image and a generation that differs from the heap header', () => {
    const work = path.join(dir, 'trunc.img')
    fs.copyFileSync(images.get('nopie-lazy')!, work)
    fs.truncateSync(work, fs.statSync(work).size - 100)
    assert.equal(verifyImage(work).ok, false)
    const exe = exes.get('nopie-lazy')!
    const img = path.join(dir, 'gen.img')
    const heap = S.makeHeap(5n)
    S.saveWith(S.makeRequest(exe, img, false, BigInt(heap.length)), memoryFor(exe, false, heap))
    assert.deepEqual(verifyImage(img).problems.map((p) => p.code), ['IMAGE_GENERATION'])
  })

  it('saving from an image starts from the original executable (no layers)', () => {
    const exe = exes.get('pie-lazy')!
    const first = images.get('pie-lazy')!
    const second = path.join(dir, 'second.img')
    const heap = S.makeHeap(2n, 'second generation')
    const req = S.makeRequest(first, second, true, BigInt(heap.length), {generation: 2n, origin: first})
    const {plan} = S.saveWith(req, memoryFor(exe, true, heap))
    assert.equal(plan.fileSize, BigInt(fs.statSync(first).size))
    assert.equal(run(second, true), EXPECTED.replace('hello from the heap', 'second generation'))
    const {manifest, original} = manifestOf(second)
    assert.equal(manifest.generation, 2n)
    assert.equal(manifest.runtimePath, exe)
    assert.equal(sha256(original), sha256(fs.readFileSync(exe)))
    assert.equal(verifyImage(second).ok, true)
    // The image the process came from was deleted: the running executable (an image too) still tells.
    const third = path.join(dir, 'third.img')
    const gone = path.join(dir, 'gone.img')
    const {plan: again} = S.saveWith({...req, path: third, origin: gone, exe: second}, memoryFor(exe, true, heap))
    assert.equal(again.fileSize, plan.fileSize)
    assert.equal(run(third, true), EXPECTED.replace('hello from the heap', 'second generation'))
  })

  it('a registered region gets its own PT_LOAD at its address', () => {
    const exe = exes.get('nopie-now')!
    const img = path.join(dir, 'region.img')
    const heap = S.makeHeap(1n)
    S.saveWith(S.makeRequest(exe, img, false, BigInt(heap.length), {regions: [{addr: 0x610000000000n, size: 0x3000n}]}), memoryFor(exe, false, heap))
    const l = execFileSync('readelf', ['-lW', img], {encoding: 'utf8'})
    assert.match(l, /LOAD\s+0x[0-9a-f]+ 0x0000610000000000 0x0000610000000000 0x003000 0x003000 RW /)
    assert.equal(run(img, false), EXPECTED)
    assert.equal(verifyImage(img).ok, true)
  })

  it('touching regions share one PT_LOAD; a gap or a partial last page keeps them apart', () => {
    const exe = exes.get('nopie-now')!
    const img = path.join(dir, 'regions.img')
    const heap = S.makeHeap(1n)
    const at = (k: bigint) => 0x610000000000n + k * 0x1000n
    const regions = [
      {addr: at(2n), size: 0x1800n}, {addr: at(0n), size: 0x2000n}, // touching: one segment [0, 3.5 pages)
      {addr: at(4n), size: 0x800n}, {addr: at(5n), size: 0x1000n}, // partial page before the next: two
      {addr: at(8n), size: 0x1000n}, // a gap: its own
    ]
    S.saveWith(S.makeRequest(exe, img, false, BigInt(heap.length), {regions}), memoryFor(exe, false, heap))
    const loads = [...execFileSync('readelf', ['-lW', img], {encoding: 'utf8'}).matchAll(/LOAD\s+0x[0-9a-f]+ (0x00006100[0-9a-f]+) 0x[0-9a-f]+ (0x[0-9a-f]+) (0x[0-9a-f]+) RW /g)]
      .map((m) => [BigInt(m[1]), BigInt(m[2]), BigInt(m[3])])
    assert.deepEqual(loads, [[at(0n), 0x3800n, 0x4000n], [at(4n), 0x800n, 0x1000n], [at(5n), 0x1000n, 0x1000n], [at(8n), 0x1000n, 0x1000n]])
    assert.equal(run(img, false), EXPECTED)
    assert.equal(verifyImage(img).ok, true)
  })

  it('imgdump verify: exit 0 on a sound image, 7 with the problems as JSON on a damaged one', function () {
    const cli = path.resolve(import.meta.dirname, '../../bin/run.js')
    if (!fs.existsSync(path.resolve(import.meta.dirname, '../../dist/commands/verify.js'))) this.skip() // built by `npm test`'s pretest
    const good = spawnSync('node', [cli, 'verify', images.get('pie-lazy')!], {encoding: 'utf8'})
    assert.equal(good.status, 0, good.stderr)
    assert.match(good.stdout, /: ok \(generation 1, \d+ payloads/)
    const work = path.join(dir, 'cli.img')
    fs.copyFileSync(images.get('pie-lazy')!, work)
    const {manifest} = manifestOf(work)
    const heapSeg = manifest.segments.find((x) => x.role === 'heap')!
    flipByte(work, heapSeg.fileOffset + 0x1000n)
    const bad = spawnSync('node', [cli, 'verify', work, '--json'], {encoding: 'utf8'})
    assert.equal(bad.status, 7)
    const rep = JSON.parse(bad.stdout)
    assert.equal(rep.ok, false)
    assert.deepEqual(rep.problems.map((p: {code: string}) => p.code), ['IMAGE_PAYLOAD_CRC'])
    const text = spawnSync('node', [cli, 'verify', work], {encoding: 'utf8'})
    assert.equal(text.status, 7)
    assert.match(text.stdout, /^IMAGE_PAYLOAD_CRC: payload at 0x/m)
    assert.match(text.stderr, /failed verification \(1 problem\)/)
  })

  it('imgdump inspect describes an image (manifest, heap, compatibility)', function () {
    const cli = path.resolve(import.meta.dirname, '../../bin/run.js')
    if (!fs.existsSync(path.resolve(import.meta.dirname, '../../dist/commands/inspect.js'))) this.skip()
    const r = spawnSync('node', [cli, 'inspect', images.get('nopie-now')!, '--json'], {encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
    const d = JSON.parse(r.stdout)
    assert.equal(d.generation, '1')
    assert.equal(d.heap.generation, '1')
    assert.equal(d.heap.brk, '0x600000001100')
    assert.deepEqual(d.segments.map((x: {role: string}) => x.role), ['data', 'heap', 'reservation'])
    const text = spawnSync('node', [cli, 'inspect', images.get('nopie-now')!], {encoding: 'utf8'})
    assert.match(text.stdout, /^image .*\n  generation 1, parent none/)
  })

  it('describeImage shows manifest, segments, compatibility and the heap header', () => {
    const {object, text} = describeImage(images.get('pie-now')!)
    assert.equal(object.generation, '1')
    assert.equal(object.heap?.magic, true)
    assert.equal(object.heap?.generation, '1')
    assert.deepEqual(object.segments.map((s) => s.role), ['data', 'heap', 'reservation'])
    // The test request records libc with a build-id this machine's libc does not have: a mismatch.
    assert.equal(object.compatibility.ok, false)
    assert.match(text, /generation 1, parent none/)
  })

  it('places a heap run of 2 MiB or more at a file offset congruent with its address modulo 2 MiB', () => {
    const exe = exes.get('pie-now')!
    const plan = planImage(S.makeRequest(exe, path.join(dir, 'big.img'), true, 0x480000n))
    const heapWrite = plan.writes.find((w) => w.addr === S.HEAP_BASE)!
    assert.equal(heapWrite.offset % 0x200000n, S.HEAP_BASE % 0x200000n)
    assert.equal(heapWrite.size, 0x480000n)
    assert.equal(plan.headerCopy, S.HEAP_BASE)
    for (let i = 1; i < plan.writes.length; i++) assert.ok(plan.writes[i - 1].offset + plan.writes[i - 1].size <= plan.writes[i].offset)
  })

  it('a truncated or damaged runtime executable gives a typed error, never a crash', () => {
    const exe = exes.get('pie-now')!
    const bytes = fs.readFileSync(exe)
    const bad = path.join(dir, 'bad-exe')
    fs.writeFileSync(bad, bytes.subarray(0, 3000))
    assert.throws(() => planImage(S.makeRequest(bad, path.join(dir, 'b.img'), true, 0x2000n)),
      (e: unknown) => e instanceof ImgdumpError && e.phase === 'parse')
    let seed = 11
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff)
    const dyn = BigInt(/DYNAMIC\s+(0x[0-9a-f]+)/.exec(execFileSync('readelf', ['-lW', exe], {encoding: 'utf8'}))![1])
    for (let i = 0; i < 150; i++) {
      const copy = Buffer.from(bytes)
      // Headers, program headers, dynamic table, relocation tables: where a lie hurts most.
      const at = i % 2 === 0 ? rnd() % 0x700 : Number(dyn) + (rnd() % 0x1f0)
      copy[at] ^= 1 << (rnd() % 8)
      fs.writeFileSync(bad, copy)
      try {
        planImage(S.makeRequest(bad, path.join(dir, 'b.img'), true, 0x2000n))
      } catch (e) {
        assert.ok(e instanceof ImgdumpError && e.phase !== 'internal', `flip at ${at}: ${(e as Error).stack}`)
      }
    }
  })

  it('refuses static and static-pie runtimes with the reason', () => {
    for (const flags of [['-static'], ['-static-pie']]) {
      const exe = S.compile(dir, `static${flags[0]}`, flags, 'int main(void){return 0;}')
      assert.throws(() => planImage(S.makeRequest(exe, path.join(dir, 's.img'), flags[0] === '-static-pie', 0x2000n)),
        (e: unknown) => e instanceof ImgdumpError && e.code === 'IMAGE_STATIC_UNSUPPORTED' && /statically linked/.test(e.message))
    }
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith('s.img') || n.includes('imgdump-')), [])
  })
})
