/**
 * The golden images of images/golden/: small images of each format, committed, that every
 * later version of imgdump must keep reading (test/image/golden.test.ts). This module names
 * them and summarises a manifest; run it to regenerate them, which is only right when the
 * image format changes on purpose (a new manifest version), never to make a test pass:
 *
 *   npx tsx test/image/golden-images.ts
 */
import {crc32c} from '@node-rs/crc32'
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {hex} from '../../src/binary/hex.js'
import {createPendingOutput} from '../../src/image/output-file.js'
import {finalizeImage, planImage, prepareOutput} from '../../src/image/plan-image.js'
import type {Manifest} from '../../src/image/manifest.js'
import type {SaveRequest} from '../../src/image/save-types.js'
import * as S from './synthetic-runtime.js'

export const GOLDEN_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../images/golden')
export const MACHO_FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/macho/bin')

export interface GoldenEntry {
  image: string
  /** the runtime the image was saved from, committed beside it (ELF) or a Mach-O fixture */
  original: string
  format: 'elf' | 'macho'
  sha256: string
  /** what the image prints when the kernel runs it (ELF, pinned), or null */
  stdout: string | null
  manifest: ReturnType<typeof summarise>
}

/** The manifest as plain JSON (bigints as hex strings, bytes as hex). */
export function summarise(m: Manifest) {
  const h = hex
  return {
    generation: h(m.generation), flags: m.flags, format: m.format, heapHeader: h(m.heapHeader), loadBias: h(m.loadBias),
    stackLimit: h(m.stackLimit), runtimeDigest: Buffer.from(m.runtimeDigest).toString('hex'), originalSize: h(m.originalSize),
    parentDigest: m.parentDigest ? Buffer.from(m.parentDigest).toString('hex') : null,
    libraries: m.libraries.map((l) => ({path: l.path, base: h(l.base), buildId: l.buildId})),
    segments: m.segments.map((s) => ({role: s.role, address: h(s.address), memSize: h(s.memSize), fileOffset: h(s.fileOffset), fileSize: h(s.fileSize)})),
    payloads: m.payloads.map((p) => ({fileOffset: h(p.fileOffset), length: h(p.length), source: p.source, crc32c: p.crc32c})),
    undo: m.undo.map((u) => ({fileOffset: h(u.fileOffset), length: u.original.length})),
  }
}

const sha256 = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')


function saveMacho(exe: string, target: string, page: bigint): void {
  const req: SaveRequest = {
    id: 1, path: target, mode: 'continue', generation: 1n, exe, loadBias: 0n, phdr: 0n,
    heap: {base: 0x300000000n, brk: 0x300000000n + page + 0x40n, reserve: 1n << 30n, header: 0x300000000n},
    regions: [], libraries: [{path: '/usr/lib/libSystem.B.dylib', base: 0x180000000n, buildId: '4c4c44b055553144a19686b8879fe57d'}],
    pinning: {noRandomize: true, stack: 'finite', stackLimit: 8n << 20n}, origin: null,
  }
  const plan = planImage(req)
  const pending = createPendingOutput(target)
  prepareOutput(plan, pending)
  const crcs = plan.writes.map((w) => {
    const bytes = w.addr === req.heap.base ? goldenHeap(w.size) : S.addressPattern(w.addr, w.size, 0x5a)
    fs.writeSync(pending.fd, bytes, 0, bytes.length, Number(w.offset))
    return crc32c(bytes) >>> 0
  })
  finalizeImage(plan, pending, crcs)
}

/** A heap whose header verify accepts (magic, generation 1). */
function goldenHeap(size: bigint): Buffer {
  const heap = S.makeHeap(1n, 'golden', Number(size))
  heap.writeBigUInt64LE(0x300000000n, 16)
  heap.writeBigUInt64LE(0x300000000n + size, 32)
  return heap
}

async function generate(): Promise<void> {
  fs.mkdirSync(GOLDEN_DIR, {recursive: true})
  const tmp = S.makeTempDir()
  const entries: GoldenEntry[] = []
  try {
    // ELF: the synthetic test program, PIE, small (no debug info), saved from simulated memory.
    const built = S.compile(tmp, 'golden-pie', ['-fPIE', '-pie'])
    const exe = path.join(GOLDEN_DIR, 'elf-x86_64-pie.runtime')
    fs.copyFileSync(built, exe)
    fs.rmSync(built)
    const img = path.join(GOLDEN_DIR, 'elf-x86_64-pie.img')
    fs.rmSync(img, {force: true})
    const heap = S.makeHeap(1n)
    S.saveWith(S.makeRequest(exe, img, true, BigInt(heap.length)), S.memoryFor(exe, true, heap))
    entries.push({image: path.basename(img), original: path.basename(exe), format: 'elf', sha256: sha256(img), stdout: S.EXPECTED,
      manifest: null as never})
    for (const [fixture, page] of [['arm64-chained-signed-pad', 0x4000n], ['x86_64-classic-signed-pad', 0x1000n]] as const) {
      const target = path.join(GOLDEN_DIR, `macho-${fixture}.img`)
      fs.rmSync(target, {force: true})
      saveMacho(path.join(MACHO_FIXTURES, fixture), target, page)
      entries.push({image: path.basename(target), original: `../../fixtures/macho/bin/${fixture}`, format: 'macho', sha256: sha256(target),
        stdout: null, manifest: null as never})
    }
  } finally {
    fs.rmSync(tmp, {recursive: true, force: true})
  }
  const {readGoldenManifest} = await import('./golden-read.js')
  for (const e of entries) e.manifest = summarise(readGoldenManifest(path.join(GOLDEN_DIR, e.image), e.format))
  fs.writeFileSync(path.join(GOLDEN_DIR, 'golden.json'), JSON.stringify(entries, null, 2) + '\n')
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await generate()
