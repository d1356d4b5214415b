/**
 * Independent judges for Mach-O tests: LLVM 16's tools (their outputs parsed into plain
 * data), the npm `macho` parser, and openssl for page hashes. Nothing here uses src/macho.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export const FIXTURES = new URL('../../fixtures/macho/bin/', import.meta.url).pathname
export const fixtureNames = (): string[] => readdirSync(FIXTURES).filter(f => f !== 'fat.macho').sort()

export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, {encoding: 'utf8', maxBuffer: 64 << 20})
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`)
  return r.stdout
}
/** llvm-objdump output without the first line(s) naming the file. */
export const objdump = (file: string, ...flags: string[]): string =>
  run('llvm-objdump-16', ['--macho', ...flags, file]).split('\n').filter(l => !l.startsWith(file)).join('\n')

export interface OtoolSegment {segname: string; vmaddr: bigint; vmsize: bigint; fileoff: bigint; filesize: bigint; sections: {sectname: string; addr: bigint; size: bigint; offset: number}[]}
export interface OtoolCommand {cmd: string; fields: Record<string, string>}

/** `llvm-otool-16 -l` parsed into commands with their key/value lines. */
export function otoolCommands(file: string): OtoolCommand[] {
  const out: OtoolCommand[] = []
  let cur: OtoolCommand | null = null
  let section: Record<string, string> | null = null
  for (const line of run('llvm-otool-16', ['-l', file]).split('\n')) {
    const t = line.trim()
    if (t.startsWith('Load command')) { cur = {cmd: '', fields: {}}; out.push(cur); section = null; continue }
    if (t === 'Section') { section = {}; cur!.fields[`section${Object.keys(cur!.fields).filter(k => k.startsWith('section')).length}`] = ''; (cur as any).sections ??= []; (cur as any).sections.push(section); continue }
    const m = /^(\S+)\s+(.*)$/.exec(t)
    if (!cur || !m) continue
    if (m[1] === 'cmd') cur.cmd = m[2]
    else (section ?? cur.fields)[m[1]] = m[2]
  }
  return out
}

export function otoolSegments(file: string): OtoolSegment[] {
  return otoolCommands(file).filter(c => c.cmd === 'LC_SEGMENT_64').map(c => ({
    segname: c.fields.segname, vmaddr: BigInt(c.fields.vmaddr), vmsize: BigInt(c.fields.vmsize),
    fileoff: BigInt(c.fields.fileoff), filesize: BigInt(c.fields.filesize),
    sections: ((c as any).sections ?? []).map((s: Record<string, string>) => ({sectname: s.sectname, addr: BigInt(s.addr), size: BigInt(s.size.split(" ")[0]), offset: Number(s.offset)})),
  }))
}

/** Chained fixups as llvm-objdump prints them: seg_count, per-segment page starts, imports. */
export function chainedFixups(file: string): {segCount: number; pages: Record<string, number[]>; imports: string[]} {
  const text = objdump(file, '--chained-fixups')
  const segCount = Number(/seg_count = (\d+)/.exec(text)?.[1] ?? -1)
  const pages: Record<string, number[]> = {}
  let seg = ''
  for (const l of text.split('\n')) {
    const s = /chained starts in segment \d+ \((\S+)\)/.exec(l)
    if (s) { seg = s[1]; pages[seg] = []; continue }
    const p = /page_start\[\d+\] = (\d+)/.exec(l)
    if (p && seg) pages[seg].push(Number(p[1]))
  }
  const imports = text.split('\n').filter(l => /lib_ordinal|weak_import|name_offset/.test(l)).map(l => l.trim())
  return {segCount, pages, imports}
}

/** `llvm-objdump -s` as section name → bytes. */
export function sectionBytes(file: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let cur: string | null = null, hex = ''
  const flush = () => { if (cur) out.set(cur, Buffer.from(hex, 'hex')); hex = '' }
  for (const l of objdump(file, '-s').split('\n')) {
    const h = /^Contents of section (\S+):/.exec(l)
    if (h) { flush(); cur = h[1]; continue }
    const d = /^ [0-9a-f]+ ((?:[0-9a-f]{2,8} ?){1,4})/.exec(l)
    if (d && cur) hex += d[1].replace(/ /g, '')
  }
  flush()
  return out
}

const require = createRequire(import.meta.url)
// eslint-disable-next-line @typescript-eslint/no-var-requires
const machoNpm = require('macho') as {parse(b: Buffer): any}
/** The npm `macho` parser's view. Its segment `fileoff` is not trustworthy (it overwrites it). */
export function npmMacho(buf: Buffer): any { return machoNpm.parse(buf) }

/** SHA-256 of every `pageSize` page of the first `limit` bytes, computed by openssl. */
export function opensslPageHashes(buf: Buffer, limit: number, pageSize: number): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'imgdump-pages-'))
  try {
    const names: string[] = []
    for (let i = 0, at = 0; at < limit; i++, at += pageSize) {
      const name = join(dir, `p${String(i).padStart(6, '0')}`)
      writeFileSync(name, buf.subarray(at, Math.min(limit, at + pageSize)))
      names.push(name)
    }
    const out = run('openssl', ['dgst', '-sha256', '-r', ...names])
    const byName = new Map(out.trim().split('\n').map(l => { const [h, n] = l.split(' '); return [n.replace(/^\*/, ''), h] as const }))
    return names.map(n => byName.get(n)!)
  } finally { rmSync(dir, {recursive: true, force: true}) }
}

/**
 * The code hashes stored in a file's CodeDirectory, read straight from the bytes with the
 * signature's offset taken from otool (big-endian fields at their cs_blobs.h offsets).
 */
export function storedPageHashes(file: string, buf: Buffer): {hashes: string[]; pageSize: number; codeLimit: number} {
  const sig = otoolCommands(file).find(c => c.cmd === 'LC_CODE_SIGNATURE')
  if (!sig) throw new Error(`${file} is not signed`)
  const at = Number(sig.fields.dataoff)
  const cdOff = at + buf.readUInt32BE(at + 16) // first BlobIndex offset
  const hashOffset = buf.readUInt32BE(cdOff + 16), nCode = buf.readUInt32BE(cdOff + 28), codeLimit = buf.readUInt32BE(cdOff + 32)
  const hashSize = buf[cdOff + 36], pageSize = 2 ** buf[cdOff + 39]
  const hashes = Array.from({length: nCode}, (_, i) => buf.subarray(cdOff + hashOffset + i * hashSize, cdOff + hashOffset + (i + 1) * hashSize).toString('hex'))
  return {hashes, pageSize, codeLimit}
}

export const readFixture = (name: string): Buffer => readFileSync(join(FIXTURES, name))
