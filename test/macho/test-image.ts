/**
 * Builds a Mach-O image from a fixture the way a save would: one heap run whose payload is
 * a range of a temp file (vmsize > filesize), __DATA re-pointed with one fixup-bearing page
 * taken "from memory", and a real manifest v1 with payload CRCs.
 */
import {crc32c} from '@node-rs/crc32'
import {createHash, randomBytes} from 'node:crypto'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {encodeManifest, type Manifest} from '../../src/image/manifest.js'
import {buildMachoImageDetailed, type MachoImageLayout} from '../../src/image/macho-image.js'
import {readMacho} from '../../src/macho/read.js'
import {findSegment, readFileRange} from '../../src/macho/model.js'
import {readFixture} from './judges.js'

export const HEAP_ADDRESS = 0x300000000n
export const HEAP_MEMSIZE = 0x100000n

export interface TestImage {
  original: Buffer
  image: Buffer
  layout: MachoImageLayout
  heapPayload: Buffer
  dataBytes: Buffer
  /** __DATA-relative range taken from memory */
  memory: {offset: bigint; length: bigint}
  manifest: Buffer
  droppedFixups: number
}

export function buildTestImage(name: string): TestImage {
  const original = readFixture(name)
  const m = readMacho(original)
  const arm = name.startsWith('arm64')
  const data = findSegment(m, '__DATA')!
  // A page with fixups in every fixture: arm64 chained page 1 (16 KiB), x86_64 page 2 (4 KiB).
  const memory = arm ? {offset: 0x4000n, length: 0x4000n} : {offset: 0x2000n, length: 0x1000n}
  const dataBytes = Buffer.alloc(Number(data.f.vmsize))
  readFileRange(m, data.f.fileoff, data.f.filesize).copy(dataBytes)
  dataBytes.fill(0x5a, Number(memory.offset), Number(memory.offset + memory.length)) // "resolved pointers" saved from memory
  const heapPayload = randomBytes(3 * 16384 + 100)
  const dir = mkdtempSync(join(tmpdir(), 'imgdump-macho-'))
  try {
    const dump = join(dir, 'heap.dump')
    writeFileSync(dump, Buffer.concat([randomBytes(123), heapPayload, randomBytes(50)]))
    let manifest = Buffer.alloc(0)
    const r = buildMachoImageDetailed(original, [{name: '__IMGHEAP0', address: HEAP_ADDRESS, memSize: HEAP_MEMSIZE,
      payload: {path: dump, offset: 123n, length: BigInt(heapPayload.length)}}], (layout, draft) => {
      const heap = layout.segments.find(s => s.name === '__IMGHEAP0')!
      const dseg = layout.segments.find(s => s.name === '__DATA')!
      // Bytes the undo log restores are covered by `patched` payloads, checksummed on the draft (images/README.md).
      const patched = layout.patched.map(r => ({fileOffset: r.fileOffset, length: r.length, source: 'patched' as const,
        crc32c: draft ? crc32c(draft.subarray(Number(r.fileOffset), Number(r.fileOffset + r.length))) >>> 0 : 0}))
      const man: Manifest = {
        generation: 1n, createdNs: 1n, heapHeader: HEAP_ADDRESS, loadBias: 0n, stackLimit: 8n << 20n, flags: 3, format: 2,
        runtimePath: `/fixtures/${name}`, runtimeDigest: createHash('sha256').update(original).digest(), originalSize: layout.originalSize,  parentDigest: null,
        libraries: [{base: 0n, path: '/usr/lib/libSystem.B.dylib', buildId: null}],
        segments: [
          {role: 'data', address: dseg.address, memSize: dseg.memSize, fileOffset: dseg.fileOffset, fileSize: dseg.fileSize},
          {role: 'heap', address: heap.address, memSize: heap.memSize, fileOffset: heap.fileOffset, fileSize: heap.fileSize},
        ],
        payloads: [
          {fileOffset: dseg.fileOffset, length: dseg.fileSize, crc32c: crc32c(dataBytes) >>> 0, source: 'memory' as const},
          {fileOffset: heap.fileOffset, length: heap.fileSize, crc32c: crc32c(heapPayload) >>> 0, source: 'memory' as const},
          ...patched,
        ].sort((a, b) => (a.fileOffset < b.fileOffset ? -1 : 1)),
        undo: layout.undo.map(u => ({fileOffset: u.fileOffset, original: u.original})),
      }
      manifest = Buffer.from(encodeManifest(man))
      return manifest
    }, {repoint: [{segment: '__DATA', bytes: dataBytes, fromMemory: [memory]}]})
    return {original, image: r.image, layout: r.layout, heapPayload, dataBytes, memory, manifest, droppedFixups: r.droppedFixups}
  } finally { rmSync(dir, {recursive: true, force: true}) }
}
