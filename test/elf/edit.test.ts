import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {chmodSync, closeSync, openSync, readFileSync, writeFileSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {
  DT, ElfError, MAX_PHNUM, dropRelrAddresses, encodeRelr, leadingRelativeCount, readBytes, PF, PT, addLoad, addNote, addNoteSegment, appendBytes, appendExternal, applyUndo, layoutElf,
  moveProgramHeaders, neutraliseRelocation, parseElf, patchBytes, readDynamic, readDynamicRelocations, readNotes, repointLoad,
  serializeElf, setDynamicValue, writeElfToFd, type ElfFile,
} from './elf-api.js'
import {corpusFile, scratchDir, systemBinaries} from './corpus.js'

// The four kinds, plus two without section headers (the edits must not need them).
const KINDS = ['static', 'static-pie', 'dynamic', 'pie', 'pie-nosections', 'static-nosections'] as const
const PATTERN = Uint8Array.from({length: 5000}, (_, i) => (i * 7 + 3) & 0xff)
const MEMSZ = 12000n

function loads(elf: ElfFile) {
  return elf.programHeaders.filter((p) => p.p_type === PT.PT_LOAD)
}

/** A fixed address well above the file's own segments (2 MiB aligned + 64 KiB). */
function fixedAddress(elf: ElfFile): bigint {
  const top = loads(elf).reduce((m, p) => (p.p_vaddr + p.p_memsz > m ? p.p_vaddr + p.p_memsz : m), 0n)
  return ((top + 0x400000n) & ~0x1fffffn) + 0x10000n
}

function run(path: string, args: string[] = []) {
  return spawnSync(path, args, {encoding: 'utf8', timeout: 30_000})
}

function edited(kind: string, dir: string): {path: string; vaddr: bigint; elf: ElfFile; input: Buffer; out: Uint8Array} {
  const input = readFileSync(corpusFile(kind))
  const parsed = parseElf(input)
  const vaddr = fixedAddress(parsed)
  let elf = moveProgramHeaders(parsed)
  const a = appendBytes(elf, {bytes: PATTERN, vaddr})
  elf = addLoad(a.elf, {vaddr, offset: a.offset, filesz: BigInt(PATTERN.length), memsz: MEMSZ, flags: PF.PF_R | PF.PF_W}).elf
  elf = addNote(elf, {name: 'imgdump', type: 0x494d47, desc: Uint8Array.from([1, 2, 3, 4, 5])}).elf
  const out = serializeElf(elf)
  const path = join(dir, kind)
  writeFileSync(path, out)
  chmodSync(path, 0o755)
  return {path, vaddr, elf, input, out}
}

describe('ELF editing, proven by the kernel', () => {
  const dir = scratchDir('imgdump-elf-edit-')

  for (const kind of KINDS) {
    describe(kind, () => {
      let e: ReturnType<typeof edited>
      before(() => { e = edited(kind, dir) })

      it('still runs, and sees all program headers through AT_PHDR', () => {
        const r = run(e.path)
        assert.equal(r.status, 0, r.stderr)
        assert.match(r.stdout, new RegExp(`^probe ok mode=default counter=42 phnum=${e.elf.programHeaders.length}\\n$`))
        const before = run(corpusFile(kind))
        assert.match(before.stdout, new RegExp(`phnum=${parseElf(e.input).programHeaders.length}\\n$`))
      })

      it('maps the added PT_LOAD at its fixed address: the pattern, then zeros up to p_memsz', () => {
        const r = run(e.path, [e.vaddr.toString(16), String(MEMSZ)])
        assert.equal(r.status, 0, r.stderr)
        const want = Buffer.concat([Buffer.from(PATTERN), Buffer.alloc(Number(MEMSZ) - PATTERN.length)]).toString('hex')
        assert.equal(r.stdout.trim(), want)
      })

      it('is a valid file: re-parses, PT_LOADs sorted, tail above everything, PT_PHDR on the table', () => {
        const back = parseElf(e.out) // the reader validates order, overlap and congruence
        const ls = loads(back)
        const tail = ls[ls.length - 1]
        assert.equal(tail.p_offset, back.header.e_phoff)
        assert.equal(tail.p_flags, PF.PF_R)
        assert.equal(tail.p_vaddr % 0x1000n, tail.p_offset % 0x1000n)
        assert.ok(ls.slice(0, -1).every((p) => p.p_vaddr + p.p_memsz <= tail.p_vaddr))
        const phdr = back.programHeaders.find((p) => p.p_type === PT.PT_PHDR)
        if (phdr) assert.deepEqual([phdr.p_offset, phdr.p_vaddr, phdr.p_filesz], [back.header.e_phoff, tail.p_vaddr, BigInt(back.programHeaders.length * 56)])
        assert.ok(back.programHeaders.every((p) => p.p_type !== PT.PT_LOAD || p.p_align === 0x1000n), 'p_align stays at the page size')
        const added = readNotes(back).find((n) => n.name === 'imgdump')
        assert.deepEqual(added && [...added.desc], [1, 2, 3, 4, 5])
        // readelf reads the moved table without complaint and lists the added note segment.
        const re = spawnSync('readelf', ['-lW', e.path], {encoding: 'utf8'})
        assert.equal(re.status, 0)
        assert.doesNotMatch(re.stderr, /warning|error/i)
        const notePh = back.programHeaders.findLast((p) => p.p_type === PT.PT_NOTE)!
        assert.ok(notePh.p_offset >= tail.p_offset && notePh.p_offset + notePh.p_filesz <= tail.p_offset + tail.p_filesz, 'note inside the tail PT_LOAD')
        assert.match(re.stdout, new RegExp(`NOTE\\s+0x0*${notePh.p_offset.toString(16)}\\s+0x0*${notePh.p_vaddr.toString(16)}\\s`))
      })

      it('the undo log rebuilds the original byte for byte', () => {
        assert.deepEqual(applyUndo(e.out, e.elf.undo, e.elf.originalSize), new Uint8Array(e.input))
      })
    })
  }

  it('an executable whose data segment is re-pointed at a copy still runs', () => {
    const input = readFileSync(corpusFile('pie'))
    let elf = moveProgramHeaders(parseElf(input))
    const index = elf.programHeaders.findIndex((p) => p.p_type === PT.PT_LOAD && (p.p_flags & PF.PF_W) !== 0)
    const data = elf.programHeaders[index]
    const copy = Uint8Array.from(input.subarray(Number(data.p_offset), Number(data.p_offset + data.p_filesz)))
    // Change `counter` (42 → 43) in the copy only: the image must print the copy's value.
    const sym = spawnSync('nm', [corpusFile('pie')], {encoding: 'utf8'}).stdout.split('\n').find((l) => / D counter$/.test(l))!
    const at = Number(BigInt('0x' + sym.split(' ')[0]) - data.p_vaddr)
    assert.equal(copy[at], 42)
    copy[at] = 43
    const a = appendBytes(elf, {bytes: copy, vaddr: data.p_vaddr})
    elf = repointLoad(a.elf, index, {offset: a.offset, filesz: data.p_filesz})
    const path = join(dir, 'pie-repointed')
    const out = serializeElf(elf)
    writeFileSync(path, out, {mode: 0o755})
    const r = run(path)
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /counter=43/)
    assert.deepEqual(applyUndo(out, elf.undo, elf.originalSize), new Uint8Array(input))
  })

  it('re-pointing in place (table not moved) records the program header in the undo log', () => {
    const input = readFileSync(corpusFile('dynamic'))
    const elf = parseElf(input)
    const index = elf.programHeaders.findIndex((p) => p.p_type === PT.PT_LOAD && (p.p_flags & PF.PF_W) !== 0)
    const p = elf.programHeaders[index]
    const next = repointLoad(elf, index, {offset: p.p_offset, filesz: p.p_filesz, memsz: p.p_memsz + 0x1000n})
    assert.equal(next.undo.length, 1)
    assert.equal(next.undo[0].offset, elf.header.e_phoff + BigInt(index * 56))
    const out = serializeElf(next)
    assert.equal(parseElf(out).programHeaders[index].p_memsz, p.p_memsz + 0x1000n)
    assert.deepEqual(applyUndo(out, next.undo, next.originalSize), new Uint8Array(input))
  })

  it('relocations rewritten to NONE are skipped by ld.so, DT_RELACOUNT fixed, undo restores them', () => {
    const input = readFileSync(corpusFile('pie'))
    let elf = parseElf(input)
    const {relocations, relaCount} = readDynamicRelocations(elf)
    // The RELATIVE relocation of `mode` (points at "default"); neutralised, the word stays 0 in
    // the file, so the program would crash — instead pick one whose target we then patch.
    const sym = spawnSync('nm', [corpusFile('pie')], {encoding: 'utf8'}).stdout.split('\n').find((l) => / D mode$/.test(l))!
    const modeAddr = BigInt('0x' + sym.split(' ')[0])
    const r = relocations.find((x) => x.offset === modeAddr)
    assert.ok(r && r.typeName === 'R_X86_64_RELATIVE', 'mode has a RELATIVE relocation')
    elf = neutraliseRelocation(elf, r)
    assert.equal(leadingRelativeCount(parseElf(input), relocations), relaCount)
    const after = readDynamicRelocations(elf)
    const count = leadingRelativeCount(elf, after.relocations)
    assert.ok(relaCount !== undefined && count < relaCount, 'the RELATIVE run now stops at the neutralised entry')
    // Without the count fixed, ld.so refuses: it asserts the type of the first DT_RELACOUNT entries.
    const unfixed = join(dir, 'pie-none-unfixed')
    writeFileSync(unfixed, serializeElf(elf), {mode: 0o755})
    const refused = spawnSync(unfixed, [], {encoding: 'utf8', timeout: 30_000})
    assert.notEqual(refused.status, 0)
    assert.match(refused.stderr, /Assertion .*R_X86_64_RELATIVE/)
    elf = setDynamicValue(elf, DT.DT_RELACOUNT, count)
    assert.equal(readDynamicRelocations(elf).relaCount, count)
    assert.equal(after.relocations.find((x) => x.offset === modeAddr)!.type, 0)
    // The word at `mode` now holds the unrelocated address of "default" (ld.so leaves it alone):
    // in a PIE that is an invalid pointer, so the program must crash — proof ld.so skipped it.
    const path = join(dir, 'pie-none')
    const out = serializeElf(elf)
    writeFileSync(path, out, {mode: 0o755})
    const res = spawnSync('readelf', ['-rW', path], {encoding: 'utf8'}).stdout
    assert.match(res, new RegExp(`0*${modeAddr.toString(16)}\\s+0+\\s+R_X86_64_NONE`))
    const ran = spawnSync('setarch', ['-R', path], {encoding: 'utf8', timeout: 30_000})
    assert.notEqual(ran.status, 0, 'with its relocation gone, mode points at an unmapped low address')
    assert.deepEqual(applyUndo(out, elf.undo, elf.originalSize), new Uint8Array(input))
  })

  it('external ranges are left to someone else; writeElfToFd writes everything else', () => {
    const input = readFileSync(corpusFile('dynamic'))
    const base = moveProgramHeaders(parseElf(input))
    const vaddr = fixedAddress(base)
    const x = appendExternal(base, {length: BigInt(PATTERN.length), vaddr, label: 'heap run 0'})
    assert.equal(x.offset % 0x1000n, vaddr % 0x1000n)
    const elf = addLoad(x.elf, {vaddr, offset: x.offset, filesz: BigInt(PATTERN.length), memsz: MEMSZ}).elf
    const ext = layoutElf(elf).pieces.filter((p) => p.kind === 'external')
    assert.deepEqual(ext.map((p) => [p.offset, p.length, p.source]), [[x.offset, BigInt(PATTERN.length), 'heap run 0']])
    assert.throws(() => serializeElf(elf), /filled by someone else/)
    const path = join(dir, 'dynamic-external')
    const fd = openSync(path, 'w', 0o755)
    const layout = writeElfToFd(elf, fd, {truncate: true})
    writeSync(fd, PATTERN, 0, PATTERN.length, Number(x.offset)) // "another process"
    closeSync(fd)
    assert.equal(BigInt(readFileSync(path).length), layout.size)
    const r = run(path, [vaddr.toString(16), String(MEMSZ)])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), Buffer.concat([Buffer.from(PATTERN), Buffer.alloc(Number(MEMSZ) - PATTERN.length)]).toString('hex'))
  })

  it('a PT_NOTE over loaded bytes is accepted, one outside every PT_LOAD refused', () => {
    const elf = moveProgramHeaders(parseElf(readFileSync(corpusFile('pie'))))
    const note = readNotes(elf)[0]
    const ok = addNoteSegment(elf, {offset: note.offset, size: 0x20n})
    assert.equal(ok.elf.programHeaders[ok.index].p_type, PT.PT_NOTE)
    assert.throws(() => addNoteSegment(elf, {offset: 0x7fffffffn, size: 4n}), (e: ElfError) => e.code === 'ELF_NOT_LOADED' && e.phase === 'edit')
  })

  it('edits that cannot be done give typed edit errors', () => {
    const elf = parseElf(readFileSync(corpusFile('pie')))
    const code = (fn: () => unknown): string => { try { fn(); return 'no error' } catch (e) { assert.ok(e instanceof ElfError); assert.equal(e.phase, 'edit'); return e.code } }
    assert.equal(code(() => addLoad(elf, {vaddr: 0x10000000n, offset: 0n, filesz: 0n, memsz: 0x1000n})), 'ELF_PHDR_NOT_MOVED')
    const moved = moveProgramHeaders(elf)
    assert.equal(code(() => addLoad(moved, {vaddr: 0x1000n, offset: 0x1000n, filesz: 0x10n, memsz: 0x10n})), 'ELF_OVERLAPPING_LOAD')
    assert.equal(code(() => addLoad(moved, {vaddr: 0x10000001n, offset: 0n, filesz: 0x10n, memsz: 0x10n})), 'ELF_BAD_EDIT')
    assert.equal(code(() => addLoad(moved, {vaddr: 0x10000000n, offset: 0n, filesz: 0x10n, memsz: 0x2000n, flags: PF.PF_R})), 'ELF_BAD_EDIT')
    assert.equal(code(() => repointLoad(moved, 0, {offset: 0n, filesz: 0n})), 'ELF_NOT_A_LOAD')
    assert.equal(code(() => patchBytes(moved, 8n, new Uint8Array(4))), 'ELF_PATCH_OUTSIDE_CONTENT')
    assert.equal(code(() => setDynamicValue(moved, DT.DT_RPATH, 1n)), 'ELF_NO_SUCH_DYNAMIC')
    let many = moved
    assert.equal(code(() => {
      for (let i = 0; ; i++) many = addNoteSegment(many, {offset: readNotes(moved)[0].offset, size: 0x20n}).elf
    }), 'ELF_TOO_MANY_SEGMENTS')
    assert.equal(many.programHeaders.length, MAX_PHNUM)
    assert.equal(MAX_PHNUM, 73)
  })

  it('edits are pure: the input model is unchanged', () => {
    const elf = parseElf(readFileSync(corpusFile('pie')))
    const before = serializeElf(elf)
    moveProgramHeaders(elf)
    patchBytes(elf, 0x400n, new Uint8Array([1, 2, 3]))
    assert.deepEqual(serializeElf(elf), before)
    assert.equal(readDynamic(elf)!.needed[0], 'libc.so.6')
  })

  it('DT_RELR: encoding round-trips, dropped addresses leave the table and DT_RELRSZ shrinks', function () {
    const libc = systemBinaries().find((p) => p.endsWith('/libc.so.6'))
    const elf = parseElf(readFileSync(libc!))
    const {relr, relrRange} = readDynamicRelocations(elf)
    if (!relrRange) this.skip()
    const words = readBytes(elf, relrRange!.offset, relrRange!.size)
    const view = new DataView(words.buffer, words.byteOffset, words.byteLength)
    assert.deepEqual(encodeRelr(relr), Array.from({length: words.length / 8}, (_, i) => view.getBigUint64(i * 8, true)))
    const drop = new Set(relr.filter((_, i) => i % 3 === 0))
    const edited = dropRelrAddresses(elf, (a) => drop.has(a))
    const out = serializeElf(edited)
    const back = readDynamicRelocations(parseElf(out))
    assert.deepEqual(back.relr, relr.filter((a) => !drop.has(a)))
    assert.ok(back.relrRange!.size <= relrRange!.size)
    // readelf decodes the rewritten table the same way.
    const path = join(scratchDir('imgdump-elf-relr-'), 'libc.so.6')
    writeFileSync(path, out)
    const m = /contains \d+ entries:\n\s+(\d+) offsets/.exec(spawnSync('readelf', ['-rW', path], {encoding: 'utf8'}).stdout)
    assert.equal(Number(m![1]), back.relr.length)
    assert.deepEqual(applyUndo(out, edited.undo, edited.originalSize), new Uint8Array(readFileSync(libc!)))
  })
})
