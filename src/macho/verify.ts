/**
 * The layout validator for Mach-O files and images (DESIGN §7): page alignment, no overlap
 * in file or memory, __LINKEDIT last and ending at EOF, every linkedit offset inside it,
 * chained fixups' seg_count true, load commands before the first section, the code
 * signature's hashes. A layer above adds its own per-slice checks through `slice` (imgdump
 * images: src/image/macho-verify.ts). `verifyMacho` never throws for bad input: every finding
 * is a problem string.
 */
import {readChainedFixups} from './chained-fixups.js'
import {decodeBind, decodeLazyBind, decodeRebase} from './dyld-opcodes.js'
import {verifySignature} from './code-signature.js'
import {CPU_TYPE_ARM64, LC, isZerofill, pageSizeFor} from './definitions.js'
import {archName, pickSlice, readFat} from './fat.js'
import {alignUp} from '../binary/align.js'
import {firstSectionOffset, loadCommandsEnd} from './layout-facts.js'
import {linkeditPieces} from './linkedit-layout.js'
import {findCommand, type MachoFile, readFileRange, segmentCommands} from './model.js'
import {isFat, readMacho} from './read.js'
import {hex} from '../binary/hex.js'

export interface VerifyOptions {
  /** fat files: the slice to check (default: every slice) */
  arch?: string
  /** report an unsigned file as a problem (images must be signed; arm64 kills unsigned code) */
  requireSignature?: boolean
  /** checks of a layer above, run on every slice after the Mach-O ones */
  slice?: SliceCheck
}
export interface VerifyResult {ok: boolean; problems: string[]}

export interface SliceCheck {
  /** the slice must carry a code signature (beyond `requireSignature`) */
  mustBeSigned(m: MachoFile): boolean
  problems(m: MachoFile, buf: Buffer): string[]
}

export function verifyMacho(buf: Buffer, opts: VerifyOptions = {}): VerifyResult {
  const problems: string[] = []
  try {
    if (isFat(buf)) {
      const fat = readFat(buf)
      const slices = opts.arch ? [pickSlice(fat, opts.arch)] : fat.slices
      for (const s of slices) {
        if (s.offset % (1n << BigInt(s.align)) !== 0n) problems.push(`${archName(s.cputype)}: slice offset ${s.offset} not aligned to 2^${s.align}`)
        for (const p of checkSlice(s.bytes, opts)) problems.push(`${archName(s.cputype)}: ${p}`)
      }
    } else problems.push(...checkSlice(buf, opts))
  } catch (e) {
    problems.push((e as Error).message)
  }
  return {ok: problems.length === 0, problems}
}

function checkSlice(buf: Buffer, opts: VerifyOptions): string[] {
  let m: MachoFile
  try { m = readMacho(buf) } catch (e) { return [(e as Error).message] }
  const problems = [...checkLayout(m, BigInt(buf.length)), ...checkFixups(m)]
  if (findCommand(m, 'linkedit_data', LC.LC_CODE_SIGNATURE)) problems.push(...verifySignature(buf, m))
  else if (opts.requireSignature || m.header.cputype === CPU_TYPE_ARM64 && opts.slice?.mustBeSigned(m)) problems.push('not signed (arm64 macOS kills unsigned code)')
  if (opts.slice) problems.push(...opts.slice.problems(m, buf))
  return problems
}


export function checkLayout(m: MachoFile, fileSize: bigint): string[] {
  const problems: string[] = []
  const page = pageSizeFor(m.header.cputype)
  const segs = segmentCommands(m)
  const le = segs.find(s => s.f.segname === '__LINKEDIT')
  for (const s of segs) {
    const n = s.f.segname
    if (s.f.vmaddr % page) problems.push(`${n}: vmaddr ${hex(s.f.vmaddr)} not aligned to ${hex(page)}`)
    if (s.f.filesize > 0n && s.f.fileoff % page) problems.push(`${n}: fileoff ${hex(s.f.fileoff)} not aligned to ${hex(page)}`)
    if (s !== le && s.f.vmsize % page) problems.push(`${n}: vmsize ${hex(s.f.vmsize)} not a multiple of ${hex(page)}`)
    if (s.f.filesize > s.f.vmsize) problems.push(`${n}: filesize ${s.f.filesize} > vmsize ${s.f.vmsize}`)
    if (s.f.fileoff + s.f.filesize > fileSize) problems.push(`${n}: file range ends at ${s.f.fileoff + s.f.filesize}, past EOF ${fileSize}`)
    for (const sec of s.sections) {
      const where = `${n},${sec.sectname}`
      if (sec.addr < s.f.vmaddr || sec.addr + sec.size > s.f.vmaddr + s.f.vmsize) problems.push(`${where}: outside its segment in memory`)
      if (!isZerofill(sec.flags) && sec.size > 0n && sec.offset > 0) {
        if (BigInt(sec.offset) !== s.f.fileoff + (sec.addr - s.f.vmaddr)) problems.push(`${where}: file offset ${sec.offset} disagrees with its address`)
        if (BigInt(sec.offset) + sec.size > s.f.fileoff + s.f.filesize) problems.push(`${where}: bytes outside the segment's file range`)
      }
    }
  }
  const pairs = (get: (s: typeof segs[number]) => [bigint, bigint] | null, what: string) => {
    const r = segs.map(s => ({s, r: get(s)})).filter(x => x.r && x.r[1] > x.r[0]).sort((a, b) => (a.r![0] < b.r![0] ? -1 : 1))
    for (let i = 1; i < r.length; i++) {
      if (r[i].r![0] < r[i - 1].r![1]) problems.push(`${r[i].s.f.segname} overlaps ${r[i - 1].s.f.segname} in ${what}`)
    }
  }
  // __TEXT maps the header itself, so it may start at file offset 0 along with it.
  pairs(s => (s.f.filesize > 0n ? [s.f.fileoff, s.f.fileoff + s.f.filesize] : null), 'the file')
  pairs(s => [s.f.vmaddr, s.f.vmaddr + alignUp(s.f.vmsize, page)], 'memory')
  // dyld (mach_o::Header::validSemanticsSegments) refuses segments whose load command order
  // differs from their file order (segments with file bytes) or their address order.
  for (let i = 1; i < segs.length; i++) {
    const a = segs[i - 1].f, b = segs[i].f
    if (b.fileoff < a.fileoff && b.filesize > 0n) problems.push(`segment '${b.segname}' file offset out of order (dyld refuses it)`)
    if (b.vmaddr < a.vmaddr) problems.push(`segment '${b.segname}' vm address out of order (dyld refuses it)`)
  }
  if (!le) problems.push('no __LINKEDIT segment')
  else {
    if (segs[segs.length - 1] !== le) problems.push('__LINKEDIT is not the last segment command')
    for (const s of segs) {
      if (s === le) continue
      if (s.f.filesize > 0n && s.f.fileoff >= le.f.fileoff) problems.push(`${s.f.segname} lies after __LINKEDIT in the file`)
      if (s.f.vmsize > 0n && s.f.vmaddr >= le.f.vmaddr) problems.push(`${s.f.segname} lies after __LINKEDIT in memory`)
    }
    if (le.f.fileoff + le.f.filesize !== fileSize) problems.push(`__LINKEDIT ends at ${le.f.fileoff + le.f.filesize}, the file at ${fileSize}`)
    const start = Number(le.f.fileoff), end = start + Number(le.f.filesize)
    // dyld's linkedit check (MachOAnalyzer::validLinkeditLayout): every blob inside __LINKEDIT,
    // no two overlapping, each 8-byte aligned (the string table may be unaligned, the code
    // signature needs 16).
    let prev: {name: string; end: number} | null = null
    for (const p of linkeditPieces(m)) {
      if (p.offset < start || p.offset + p.size > end) problems.push(`${p.name} at ${p.offset}+${p.size} outside __LINKEDIT ${start}..${end}`)
      if (p.size === 0) continue
      const align = p.name === 'LC_CODE_SIGNATURE' ? 16 : p.name === 'strtab' ? 1 : 8
      if (p.offset % align) problems.push(`mis-aligned LINKEDIT content ${p.name} at ${p.offset} (needs ${align})`)
      if (prev && p.offset < prev.end) problems.push(`LINKEDIT overlap of ${prev.name} and ${p.name}`)
      prev = {name: p.name, end: p.offset + p.size}
    }
  }
  const first = firstSectionOffset(m)
  if (loadCommandsEnd(m) > first) problems.push(`load commands end at ${loadCommandsEnd(m)}, after the first section at ${first}`)
  return problems
}

export function checkFixups(m: MachoFile): string[] {
  const lc = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)
  if (!lc) return checkOpcodeTargets(m)
  const problems: string[] = []
  const segs = segmentCommands(m)
  try {
    const cf = readChainedFixups(readFileRange(m, BigInt(lc.f.dataoff), BigInt(lc.f.datasize)))
    if (cf.segments.length !== segs.length) problems.push(`chained fixups seg_count ${cf.segments.length} != ${segs.length} segments`)
    const base = segs.find(s => s.f.segname === '__TEXT')?.f.vmaddr ?? 0n
    cf.segments.forEach((st, i) => {
      if (!st || i >= segs.length) return
      const s = segs[i]
      if (st.f.segment_offset !== s.f.vmaddr - base) problems.push(`chained starts for segment ${i} (${s.f.segname}): segment_offset ${hex(st.f.segment_offset)} != ${hex(s.f.vmaddr - base)}`)
      if (BigInt(st.f.page_count) * BigInt(st.f.page_size) > alignUp(s.f.vmsize, BigInt(st.f.page_size))) problems.push(`chained starts for ${s.f.segname}: ${st.f.page_count} pages exceed the segment`)
      st.pageStarts.forEach((p, k) => { if (p !== 0xffff && p >= st.f.page_size) problems.push(`chained starts for ${s.f.segname}: page ${k} start ${p} outside the page`) })
    })
  } catch (e) { problems.push((e as Error).message) }
  return problems
}

/** Classic dyld info: every rebase and bind must target a pointer inside a segment. */
function checkOpcodeTargets(m: MachoFile): string[] {
  const info = findCommand(m, 'dyld_info')
  if (!info) return []
  const segs = segmentCommands(m)
  const problems: string[] = []
  const streams = [['rebase', decodeRebase], ['bind', decodeBind], ['weak_bind', decodeBind], ['lazy_bind', decodeLazyBind]] as const
  for (const [kind, decode] of streams) {
    try {
      const entries = decode(readFileRange(m, BigInt(info.f[`${kind}_off`]), BigInt(info.f[`${kind}_size`])))
      for (const e of entries) {
        const s = segs[e.segment]
        if (!s || e.offset + 8n > s.f.vmsize) { problems.push(`${kind} entry targets segment ${e.segment} offset ${hex(e.offset)} outside any segment`); break }
      }
    } catch (e) { problems.push((e as Error).message) }
  }
  return problems
}
