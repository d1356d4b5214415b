/**
 * Test helpers: compile small C runtimes into a temp dir and play the runtime's side of a
 * save without the C library — build a SaveRequest, then write every planned range from a
 * simulated memory (the original file's data, relocated like ld.so would, plus known
 * modifications, and a synthetic heap), with CRC32C as the runtime would compute it.
 */
import {crc32c} from '@node-rs/crc32'
import {execFileSync} from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {createPendingOutput} from '../../src/image/output-file.js'
import {finalizeImage, planImage, prepareOutput} from '../../src/image/plan-image.js'
import type {ImagePlan, SaveRequest, SaveResult} from '../../src/image/save-types.js'

export const HEAP_BASE = 0x600000000000n
export const PIE_BIAS = 0x555555554000n
export const HEAP_STRING_AT = HEAP_BASE + 0x1000n

export const TEST_PROGRAM = `
#include <stdio.h>
#include <string.h>
int counter = 41;
const char *mode = "default";
const char *other = "changed";
int bss_var;
char big_bss[100000];
__thread int tls_init = 5;
__thread int tls_zero;
int main(void) {
  const char *heap = (const char *)0x600000001000ULL;
  char line[512];
  int mapped = 0;
  FILE *maps = fopen("/proc/self/maps", "r");
  while (maps && fgets(line, sizeof line, maps)) if (strncmp(line, "600000000000-", 13) == 0) mapped = 1;
  if (maps) fclose(maps);
  if (!mapped) heap = "(none)";
  fprintf(stdout, "heap=%s counter=%d bss=%d mode=%s big=%d mapped=%d tls=%d,%d\\n", heap, counter, bss_var, mode, big_bss[5000], mapped, tls_init, tls_zero);
  return 0;
}
`

export function makeTempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'imgdump-image-'))
}

export function compile(dir: string, name: string, flags: string[], source = TEST_PROGRAM): string {
  const src = path.join(dir, `${name}.c`)
  fs.writeFileSync(src, source)
  const out = path.join(dir, name)
  execFileSync('gcc', ['-O0', '-g', ...flags, src, '-o', out])
  return out
}

/** Symbol → address from `nm` (an independent oracle). */
export function symbols(exe: string): Map<string, bigint> {
  const out = new Map<string, bigint>()
  for (const line of execFileSync('nm', [exe], {encoding: 'utf8'}).split('\n')) {
    const m = /^([0-9a-f]+) \w (\S+)$/.exec(line)
    if (m) out.set(m[2], BigInt('0x' + m[1]))
  }
  return out
}

interface LoadInfo {offset: bigint; vaddr: bigint; filesz: bigint; memsz: bigint}

/** PT_LOADs and RELATIVE relocations from `readelf` (independent of our parser). */
function readelfFacts(exe: string): {loads: LoadInfo[]; relative: {at: bigint; addend: bigint}[]; relr: bigint[]} {
  const l = execFileSync('readelf', ['-lW', exe], {encoding: 'utf8'})
  const loads = [...l.matchAll(/^\s+LOAD\s+(0x[0-9a-f]+) (0x[0-9a-f]+) 0x[0-9a-f]+ (0x[0-9a-f]+) (0x[0-9a-f]+)/gm)]
    .map((m) => ({offset: BigInt(m[1]), vaddr: BigInt(m[2]), filesz: BigInt(m[3]), memsz: BigInt(m[4])}))
  const r = execFileSync('readelf', ['-rW', exe], {encoding: 'utf8'})
  const relative = [...r.matchAll(/^([0-9a-f]{16})\s+[0-9a-f]+\s+R_X86_64_RELATIVE\s+([0-9a-f]+)/gm)]
    .map((m) => ({at: BigInt('0x' + m[1]), addend: BigInt('0x' + m[2])}))
  // readelf -r lists DT_RELR entries by address in a "Relocation section '.relr.dyn'" block.
  const relr: bigint[] = []
  const block = /Relocation section '\.relr\.dyn'[\s\S]*?(?:\n\n|$)/.exec(r)
  if (block) for (const m of block[0].matchAll(/^([0-9a-f]{16})\s/gm)) relr.push(BigInt('0x' + m[1]))
  return {loads, relative, relr}
}

export interface SimulatedMemory {
  read(addr: bigint, size: bigint): Buffer
}

/**
 * Memory of the process at save time: the data segment as ld.so left it (original bytes,
 * RELATIVE relocations applied with `bias`), `pokes` (address → bytes, un-relocated vaddr)
 * over it, and the heap buffer at HEAP_BASE.
 */
export function simulateMemory(exe: string, bias: bigint, heap: Buffer, pokes: Map<bigint, Buffer>): SimulatedMemory {
  const file = fs.readFileSync(exe)
  const facts = readelfFacts(exe)
  const data = new Map<bigint, Buffer>() // page vaddr → page bytes (sparse)
  const byteAt = (vaddr: bigint): number => {
    for (const ld of facts.loads) {
      if (vaddr >= ld.vaddr && vaddr < ld.vaddr + ld.memsz) {
        return vaddr < ld.vaddr + ld.filesz ? file[Number(ld.offset + (vaddr - ld.vaddr))] : 0
      }
    }
    return 0
  }
  const word = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b }
  const overlay = new Map<bigint, number>()
  const put = (vaddr: bigint, bytes: Buffer) => bytes.forEach((b, i) => overlay.set(vaddr + BigInt(i), b))
  if (bias !== 0n) {
    for (const r of facts.relative) put(r.at, word(bias + r.addend))
    for (const a of facts.relr) put(a, word(bias + file.readBigUInt64LE(Number(fileOffset(facts.loads, a)))))
  }
  for (const [a, b] of pokes) put(a, b)
  void data
  return {
    read(addr, size) {
      const out = Buffer.alloc(Number(size))
      for (let i = 0n; i < size; i++) {
        const a = addr + i
        if (a >= HEAP_BASE && a < HEAP_BASE + BigInt(heap.length)) out[Number(i)] = heap[Number(a - HEAP_BASE)]
        else {
          const v = a - bias
          out[Number(i)] = overlay.get(v) ?? byteAt(v)
        }
      }
      return out
    },
  }
}

function fileOffset(loads: LoadInfo[], vaddr: bigint): bigint {
  const l = loads.find((x) => vaddr >= x.vaddr && vaddr < x.vaddr + x.filesz)
  if (!l) throw new Error(`no file bytes for ${vaddr}`)
  return l.offset + (vaddr - l.vaddr)
}

/** A heap buffer with a valid-looking heap header (magic, generation) and a string at +0x1000. */
export function makeHeap(generation: bigint, text = 'hello from the heap', size = 0x1100): Buffer {
  const heap = Buffer.alloc(size)
  heap.write('IDMPHEAP', 0, 'latin1')
  heap.writeUInt32LE(1, 8)
  heap.writeBigUInt64LE(HEAP_BASE, 16)
  heap.writeBigUInt64LE(HEAP_BASE + BigInt(size), 32)
  heap.writeBigUInt64LE(generation, 48)
  heap.write(text + '\0', 0x1000, 'latin1')
  for (let i = 0x1100; i < size; i++) heap[i] = (i * 7) & 0xff
  return heap
}

export function makeRequest(exe: string, target: string, pie: boolean, heapSize: bigint, extra: Partial<SaveRequest> = {}): SaveRequest {
  return {
    id: 1, path: target, mode: 'continue', generation: 1n, exe,
    loadBias: pie ? PIE_BIAS : 0n, phdr: (pie ? PIE_BIAS : 0n) + 0x40n,
    heap: {base: HEAP_BASE, brk: HEAP_BASE + heapSize, reserve: 64n << 30n, header: HEAP_BASE},
    regions: [], libraries: [{path: '/lib/x86_64-linux-gnu/libc.so.6', base: 0x7ffff7d8a000n, buildId: '00000000000000000000000000000000deadbeef'}],
    pinning: {noRandomize: true, stack: 'finite', stackLimit: 0x800000n}, origin: null, ...extra,
  }
}

/** Plan, write every range from `memory` like the runtime, finalize. */
export function saveWith(req: SaveRequest, memory: SimulatedMemory): {plan: ImagePlan; result: SaveResult} {
  const plan = planImage(req)
  const pending = createPendingOutput(req.path)
  prepareOutput(plan, pending)
  const crcs = plan.writes.map((w) => {
    const bytes = memory.read(w.addr, w.size)
    fs.writeSync(pending.fd, bytes, 0, bytes.length, Number(w.offset))
    return crc32c(bytes) >>> 0
  })
  return {plan, result: finalizeImage(plan, pending, crcs)}
}

/** What TEST_PROGRAM prints when restored from an image saved from memoryFor's memory. */
export const EXPECTED = 'heap=hello from the heap counter=42 bss=7 mode=changed big=9 mapped=1 tls=5,0\n'

/** Memory as the program would have it: counter=42, bss_var=7, big_bss[5000]=9, mode = other. */
export function memoryFor(exe: string, pie: boolean, heap: Buffer): SimulatedMemory {
  const sym = symbols(exe)
  const bias = pie ? PIE_BIAS : 0n
  const pokes = new Map<bigint, Buffer>([
    [sym.get('counter')!, u32(42)], [sym.get('bss_var')!, u32(7)], [sym.get('big_bss')! + 5000n, Buffer.from([9])],
  ])
  // What a live process holds where the loader writes at start-up differs from the file: the
  // planner must take these from the file (a dumped non-zero GOT[1] breaks lazy binding).
  const sections = execFileSync('readelf', ['-SW', exe], {encoding: 'utf8'})
  const addrOf = (name: string) => {
    const m = new RegExp(`\\${name}\\s+\\w+\\s+([0-9a-f]+) [0-9a-f]+ ([0-9a-f]+)`).exec(sections)
    return m ? {addr: BigInt('0x' + m[1]), size: Number('0x' + m[2])} : undefined
  }
  const tdata = addrOf('.tdata')!
  pokes.set(tdata.addr, Buffer.alloc(tdata.size, 0xaa))
  const gotplt = addrOf('.got.plt')
  if (gotplt) pokes.set(gotplt.addr + 8n, u64(0x7ffff7ffe2e0n))
  const before = simulateMemory(exe, bias, heap, pokes)
  pokes.set(sym.get('mode')!, before.read(bias + sym.get('other')!, 8n))
  return simulateMemory(exe, bias, heap, pokes)
}

/** Known bytes for a memory range that depend on its address (`salt` tells sets apart). */
export function addressPattern(addr: bigint, size: bigint, salt = 0xa5): Buffer {
  const b = Buffer.alloc(Number(size))
  for (let i = 0; i < b.length; i++) b[i] = (Number((addr + BigInt(i)) % 251n) ^ salt) & 0xff
  return b
}

export function u32(v: number): Buffer { const b = Buffer.alloc(4); b.writeInt32LE(v); return b }
export function u64(v: bigint): Buffer { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b }
