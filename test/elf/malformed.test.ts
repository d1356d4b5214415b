import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {DT, PT, SHT, parseElf, readDynamic, readNotes, type ElfFile} from './elf-api.js'
import {buildCli, corpusFile, runCli, runCliMany, scratchDir, type CliResult} from './corpus.js'

/**
 * Malformed files, each derived from a valid PIE (the corpus' `pie`), each through the real
 * CLI: `imgdump inspect` must exit with the parse code (4), print one line naming the typed
 * error code, no stack trace, and not hang (spawnSync timeout as a guard, not a timing test).
 */
interface Case {
  name: string
  make(base: Buffer, elf: ElfFile): Buffer
  code: string
}

const u16 = (at: number, v: number) => (b: Buffer): Buffer => { b.writeUInt16LE(v, at); return b }
const u32 = (at: number, v: number) => (b: Buffer): Buffer => { b.writeUInt32LE(v, at); return b }
const u64 = (at: number | bigint, v: bigint) => (b: Buffer): Buffer => { b.writeBigUInt64LE(v, Number(at)); return b }
const u8 = (at: number | bigint, v: number) => (b: Buffer): Buffer => { b[Number(at)] = v; return b }

const ph = (elf: ElfFile, i: number): number => Number(elf.header.e_phoff) + i * 56
const sh = (elf: ElfFile, i: number): number => Number(elf.header.e_shoff) + i * 64
const loadIndex = (elf: ElfFile, n: number): number => elf.programHeaders.map((p, i) => (p.p_type === PT.PT_LOAD ? i : -1)).filter((i) => i >= 0)[n]
const phIndex = (elf: ElfFile, type: number): number => elf.programHeaders.findIndex((p) => p.p_type === type)
const secIndex = (elf: ElfFile, name: string): number => elf.sections.findIndex((s) => s.name === name)
const dynEntry = (elf: ElfFile, tag: number): number => Number(readDynamic(elf)!.entries.find((e) => e.tag === BigInt(tag))!.fileOffset)

const CASES: Case[] = [
  // Truncation at every structure boundary (and inside structures).
  {name: 'two bytes of magic', make: (b) => b.subarray(0, 2), code: 'ELF_TRUNCATED'},
  {name: 'truncated after the magic', make: (b) => b.subarray(0, 4), code: 'ELF_TRUNCATED'},
  {name: 'truncated after e_ident', make: (b) => b.subarray(0, 16), code: 'ELF_TRUNCATED'},
  {name: 'truncated inside the ELF header', make: (b) => b.subarray(0, 40), code: 'ELF_TRUNCATED'},
  {name: 'truncated one byte before the end of the ELF header', make: (b) => b.subarray(0, 63), code: 'ELF_TRUNCATED'},
  {name: 'truncated at the end of the ELF header', make: (b) => b.subarray(0, 64), code: 'ELF_TABLE_OUTSIDE_FILE'},
  {name: 'truncated inside the program header table', make: (b, e) => b.subarray(0, ph(e, 3) + 20), code: 'ELF_TRUNCATED'},
  {name: 'truncated at the end of the program header table', make: (b, e) => b.subarray(0, ph(e, e.programHeaders.length)), code: 'ELF_SEGMENT_OUTSIDE_FILE'},
  {name: 'truncated at the start of the text segment', make: (b, e) => b.subarray(0, Number(e.programHeaders[loadIndex(e, 1)].p_offset)), code: 'ELF_SEGMENT_OUTSIDE_FILE'},
  {name: 'truncated inside the data segment', make: (b, e) => b.subarray(0, Number(e.programHeaders[loadIndex(e, 3)].p_offset) + 8), code: 'ELF_SEGMENT_OUTSIDE_FILE'},
  {name: 'truncated at the end of the loaded bytes', make: (b, e) => { const d = e.programHeaders[loadIndex(e, 3)]; return b.subarray(0, Number(d.p_offset + d.p_filesz)) }, code: 'ELF_TABLE_OUTSIDE_FILE'},
  {name: 'truncated at the start of the section header table', make: (b, e) => b.subarray(0, sh(e, 0)), code: 'ELF_TABLE_OUTSIDE_FILE'},
  {name: 'truncated inside the section header table', make: (b, e) => b.subarray(0, sh(e, 5) + 10), code: 'ELF_TRUNCATED'},
  {name: 'last byte missing', make: (b) => b.subarray(0, b.length - 1), code: 'ELF_TRUNCATED'},
  // Wrong identification.
  {name: 'bad magic', make: u8(3, 0x47), code: 'ELF_BAD_MAGIC'},
  {name: 'not ELF at all (MZ)', make: (b) => { b.write('MZ', 0); return b }, code: 'UNKNOWN_FORMAT'},
  {name: 'ELF32 class', make: u8(4, 1), code: 'ELF_BAD_CLASS'},
  {name: 'invalid class 3', make: u8(4, 3), code: 'ELF_BAD_CLASS'},
  {name: 'big-endian', make: u8(5, 2), code: 'ELF_BAD_ENDIAN'},
  {name: 'EI_VERSION 0', make: u8(6, 0), code: 'ELF_BAD_VERSION'},
  {name: 'machine ARM (32-bit)', make: u16(18, 40), code: 'ELF_BAD_MACHINE'},
  {name: 'machine i386', make: u16(18, 3), code: 'ELF_BAD_MACHINE'},
  {name: 'e_version 2', make: u32(20, 2), code: 'ELF_BAD_VERSION'},
  {name: 'e_ehsize 52', make: u16(52, 52), code: 'ELF_BAD_HEADER_SIZE'},
  {name: 'e_phentsize 32', make: u16(54, 32), code: 'ELF_BAD_ENTSIZE'},
  {name: 'e_shentsize 40', make: u16(58, 40), code: 'ELF_BAD_ENTSIZE'},
  // Lying offsets and counts.
  {name: 'e_phoff past the end', make: (b) => u64(32, BigInt(b.length + 100))(b), code: 'ELF_TABLE_OUTSIDE_FILE'},
  {name: 'e_phoff overflows', make: u64(32, (1n << 64n) - 8n), code: 'ELF_OFFSET_OVERFLOW'},
  {name: 'e_phoff overlaps the ELF header', make: u64(32, 8n), code: 'ELF_OVERLAPPING_TABLES'},
  {name: 'e_phnum 65535', make: u16(56, 0xffff), code: 'ELF_ABSURD_COUNT'},
  {name: 'e_phnum runs past the end', make: (b) => u16(56, Math.ceil(b.length / 56))(b), code: 'ELF_TRUNCATED'},
  {name: 'e_shoff past the end', make: (b) => u64(40, BigInt(b.length))(b), code: 'ELF_TABLE_OUTSIDE_FILE'},
  {name: 'e_shoff overflows', make: u64(40, (1n << 64n) - 64n), code: 'ELF_OFFSET_OVERFLOW'},
  {name: 'extended e_shnum absurd', make: (b, e) => u64(sh(e, 0) + 32, 1n << 40n)(u16(60, 0)(b)), code: 'ELF_ABSURD_COUNT'},
  {name: 'e_shstrndx out of range', make: u16(62, 200), code: 'ELF_BAD_INDEX'},
  // Lying segments.
  {name: 'PT_LOAD p_filesz > p_memsz', make: (b, e) => { const i = loadIndex(e, 3); return u64(ph(e, i) + 32, e.programHeaders[i].p_memsz + 0x10n)(b) }, code: 'ELF_BAD_SEGMENT_SIZE'},
  {name: 'PT_LOAD p_offset past the end', make: (b, e) => u64(ph(e, loadIndex(e, 1)) + 8, BigInt(b.length))(b), code: 'ELF_SEGMENT_OUTSIDE_FILE'},
  {name: 'PT_LOAD p_offset + p_filesz overflows', make: (b, e) => u64(ph(e, loadIndex(e, 1)) + 8, (1n << 64n) - 16n)(b), code: 'ELF_OFFSET_OVERFLOW'},
  {name: 'PT_LOAD p_vaddr + p_memsz overflows', make: (b, e) => u64(ph(e, loadIndex(e, 3)) + 16, (1n << 64n) - 0x100n)(b), code: 'ELF_OFFSET_OVERFLOW'},
  {name: 'PT_LOADs unsorted', make: (b, e) => { const i = ph(e, loadIndex(e, 1)); const j = ph(e, loadIndex(e, 2)); const t = Buffer.from(b.subarray(i, i + 56)); b.copy(b, i, j, j + 56); t.copy(b, j); return b }, code: 'ELF_UNSORTED_LOAD'},
  {name: 'PT_LOADs overlapping', make: (b, e) => u64(ph(e, loadIndex(e, 1)) + 40, 0x10000n)(b), code: 'ELF_OVERLAPPING_LOAD'},
  {name: 'p_align not a power of two', make: (b, e) => u64(ph(e, loadIndex(e, 1)) + 48, 0x1001n)(b), code: 'ELF_BAD_ALIGNMENT'},
  {name: 'p_vaddr not congruent with p_offset', make: (b, e) => { const i = loadIndex(e, 1); return u64(ph(e, i) + 16, e.programHeaders[i].p_vaddr + 8n)(b) }, code: 'ELF_BAD_ALIGNMENT'},
  {name: 'PT_INTERP not NUL-terminated', make: (b, e) => { const p = e.programHeaders[phIndex(e, PT.PT_INTERP)]; return u8(p.p_offset + p.p_filesz - 1n, 0x41)(b) }, code: 'ELF_BAD_INTERP'},
  {name: 'PT_INTERP empty', make: (b, e) => u64(ph(e, phIndex(e, PT.PT_INTERP)) + 32, 0n)(b), code: 'ELF_BAD_INTERP'},
  // Lying sections and tables.
  {name: 'section past the end', make: (b, e) => u64(sh(e, secIndex(e, '.text')) + 24, BigInt(b.length))(b), code: 'ELF_SECTION_OUTSIDE_FILE'},
  {name: 'section size overflows', make: (b, e) => u64(sh(e, secIndex(e, '.text')) + 32, (1n << 64n) - 1n)(b), code: 'ELF_OFFSET_OVERFLOW'},
  {name: 'section name outside the name table', make: (b, e) => u32(sh(e, 3), 0x7fffffff)(b), code: 'ELF_BAD_STRING'},
  {name: '.dynsym entry size 16', make: (b, e) => u64(sh(e, secIndex(e, '.dynsym')) + 56, 16n)(b), code: 'ELF_BAD_ENTSIZE'},
  {name: '.dynsym size not a multiple of 24', make: (b, e) => u64(sh(e, secIndex(e, '.dynsym')) + 32, e.sections[secIndex(e, '.dynsym')].header.sh_size - 1n)(b), code: 'ELF_BAD_SIZE'},
  {name: '.rela.dyn entry size 0', make: (b, e) => u64(sh(e, e.sections.findIndex((s) => s.header.sh_type === SHT.SHT_RELA)) + 56, 0n)(b), code: 'ELF_BAD_ENTSIZE'},
  {name: 'dynamic table without DT_NULL', make: (b, e) => u64(ph(e, phIndex(e, PT.PT_DYNAMIC)) + 32, 16n)(b), code: 'ELF_BAD_DYNAMIC'},
  {name: 'DT_NEEDED name outside DT_STRSZ', make: (b, e) => u64(dynEntry(e, DT.DT_NEEDED) + 8, 0xfffffn)(b), code: 'ELF_BAD_STRING'},
  {name: 'DT_STRTAB at an unmapped address', make: (b, e) => u64(dynEntry(e, DT.DT_STRTAB) + 8, 0x7000000000n)(b), code: 'ELF_BAD_ADDRESS'},
  {name: 'note descriptor runs past its segment', make: (b, e) => u32(Number(readNotes(e).find((n) => n.type === 3)!.offset) + 4, 0x1000)(b), code: 'ELF_BAD_NOTE'},
]

describe('malformed ELF files through `imgdump inspect`', function () {
  this.timeout(300_000)
  let dir: string
  let base: Buffer
  let elf: ElfFile
  let results: CliResult[]
  before(async () => {
    buildCli()
    dir = scratchDir('imgdump-elf-bad-')
    base = readFileSync(corpusFile('pie'))
    elf = parseElf(base)
    // All cases run up front, a few processes at a time; each `it` checks its own result.
    const paths = CASES.map((c, n) => {
      const path = join(dir, `case-${n}`)
      writeFileSync(path, c.make(Buffer.from(base), elf))
      return path
    })
    results = await runCliMany(paths.map((p) => ['inspect', p]))
  })

  it('has at least 30 cases', () => assert.ok(CASES.length >= 30, String(CASES.length)))

  CASES.forEach((c, n) => {
    it(`${c.name} → ${c.code}`, () => {
      const r = results[n]
      assert.equal(r.signal, null, 'no hang, no crash')
      assert.equal(r.status, 4, `exit code (stderr: ${r.stderr})`)
      assert.equal(r.stdout, '')
      const lines = r.stderr.trimEnd().split('\n')
      assert.equal(lines.length, 1, `one line: ${r.stderr}`)
      assert.match(lines[0], /^imgdump: error: /)
      assert.ok(lines[0].includes(c.code) || c.code === 'UNKNOWN_FORMAT', `code ${c.code} in: ${lines[0]}`)
      assert.doesNotMatch(r.stderr, /\n\s+at |Error:/)
    })
  })

  it('--json carries the code, offset and value', () => {
    const path = join(dir, 'json-case')
    writeFileSync(path, u16(18, 40)(Buffer.from(base)))
    const r = runCli(['inspect', path, '--json'])
    assert.equal(r.status, 4)
    const j = JSON.parse(r.stdout)
    assert.deepEqual([j.error.phase, j.error.code, j.error.offset, j.error.value], ['parse', 'ELF_BAD_MACHINE', 18, 40])
  })

  it('a missing file and a directory are io errors (exit 3), one line', () => {
    for (const p of [join(dir, 'does-not-exist'), dir]) {
      const r = runCli(['inspect', p])
      assert.equal(r.status, 3, r.stderr)
      assert.equal(r.stderr.trimEnd().split('\n').length, 1)
      assert.match(r.stderr, /^imgdump: error: cannot read /)
    }
  })

  it('every truncation of the ELF and program headers gives a typed error (library level)', () => {
    const end = Number(elf.header.e_phoff) + elf.programHeaders.length * 56 + 1
    for (let len = 0; len <= end; len++) {
      assert.throws(() => parseElf(base.subarray(0, len)), (e: Error & {code?: string}) => typeof e.code === 'string' && e.code.startsWith('ELF_'), `length ${len}`)
    }
  })
})
