/**
 * Segment edits (DESIGN §5, Mach-O): insert LC_SEGMENT_64s before __LINKEDIT, re-point a
 * data segment at saved bytes, and move __LINKEDIT after everything in file and memory.
 * These edits work on an unsigned model; `editMacho` strips the signature first and signs
 * the result (arm64 kills unsigned code).
 */
import {LC, S_THREAD_LOCAL_ZEROFILL, Section64, SegmentCommand64, isZerofill, pageSizeFor} from './definitions.js'
import {MachoError} from './errors.js'
import {alignUp} from '../binary/align.js'
import {layoutChainedFixups, readChainedFixups, writeChainedFixups} from './chained-fixups.js'
import {decodeBind, decodeRebase, encodeBind, encodeRebase} from './dyld-opcodes.js'
import {linkeditSegment, relayoutLinkedit} from './linkedit-layout.js'
import {firstSectionOffset, loadCommandsEnd} from './layout-facts.js'
import {type CommandOf, findCommand, findSegment, insertCommand, type MachoFile, readFileRange, type SectionFields, segmentCommands} from './model.js'
import {noRoom, signAdhoc, stripSignature} from './code-signature.js'

const VM_PROT_READ = 1, VM_PROT_WRITE = 2

export interface NewSection {sectname: string; addr: bigint; size: bigint; align?: number}
export interface NewSegment {
  name: string
  address: bigint
  /** memory size; rounded up to the page size; must be ≥ the payload */
  memSize: bigint
  payload: Buffer
  sections?: NewSection[]
  initprot?: number
  maxprot?: number
}
/** Re-point an existing segment's file bytes (e.g. __DATA) at bytes saved from a process. */
export interface Repoint {
  segment: string
  /** the new file bytes of the segment (≤ its vmsize); zero-fill sections inside become regular */
  bytes: Buffer
  /** ranges (segment-relative) whose bytes come from memory: their fixups are removed */
  fromMemory: {offset: bigint; length: bigint}[]
}

export interface EditResult {warnings: string[]; droppedFixups: number}

const edit = (code: string, msg: string, details: {offset?: bigint | number; value?: bigint | number | string; hint?: string} = {}) => new MachoError('edit', code, msg, details)

/** Bytes of load commands the edits add (segments and their sections, plus a code signature). */
export function commandBytesNeeded(segments: NewSegment[], signed: boolean): number {
  return segments.reduce((n, s) => n + SegmentCommand64.size + Section64.size * (s.sections?.length ?? 0), 0) + (signed ? 16 : 0)
}

/** Append `bytes` at the current __LINKEDIT file position and move __LINKEDIT past them. */
function placeBeforeLinkedit(m: MachoFile, bytes: Buffer, extraVmEnd: bigint): bigint {
  const page = pageSizeFor(m.header.cputype)
  const le = linkeditSegment(m)
  const at = le.f.fileoff
  const nextFile = alignUp(at + BigInt(bytes.length), page)
  const memEnd = segmentCommands(m).filter(s => s !== le).reduce((e, s) => (s.f.vmaddr + s.f.vmsize > e ? s.f.vmaddr + s.f.vmsize : e), extraVmEnd)
  relayoutLinkedit(m, nextFile, alignUp(memEnd, page))
  if (bytes.length) m.chunks.push({offset: at, bytes, segment: null})
  return at
}

export function insertSegments(m: MachoFile, segs: NewSegment[]): void {
  const page = pageSizeFor(m.header.cputype)
  const need = loadCommandsEnd(m) + commandBytesNeeded(segs, false)
  if (need > firstSectionOffset(m)) throw noRoom(need, firstSectionOffset(m))
  for (const s of segs) {
    if (s.name.length > 16) throw edit('MACHO_BAD_LAYOUT', `segment name ${s.name} longer than 16 bytes`, {value: s.name})
    if (findSegment(m, s.name)) throw edit('MACHO_BAD_LAYOUT', `a segment named ${s.name} already exists`, {value: s.name})
    if (s.address % page !== 0n) throw edit('MACHO_BAD_LAYOUT', `segment ${s.name} address 0x${s.address.toString(16)} is not page aligned`, {value: s.address})
    const vmsize = alignUp(s.memSize, page)
    if (BigInt(s.payload.length) > vmsize) throw edit('MACHO_BAD_LAYOUT', `segment ${s.name}: payload ${s.payload.length} bytes exceeds memory size ${s.memSize}`)
    // dyld requires address order = load command order: new segments go above all others.
    const top = segmentCommands(m).filter(o => o.f.segname !== '__LINKEDIT').reduce((e, o) => (o.f.vmaddr > e ? o.f.vmaddr : e), 0n)
    if (s.address < top) {
      throw edit('MACHO_BAD_LAYOUT', `segment ${s.name} at 0x${s.address.toString(16)} lies below segment at 0x${top.toString(16)}: dyld requires ascending segment addresses`,
        {value: s.address, hint: 'heap runs and regions of a Mach-O image must lie above the executable and be given in address order'})
    }
    for (const o of segmentCommands(m)) {
      if (o.f.segname === '__LINKEDIT' || o.f.vmsize === 0n) continue
      if (s.address < o.f.vmaddr + o.f.vmsize && o.f.vmaddr < s.address + vmsize) {
        throw edit('MACHO_BAD_LAYOUT', `segment ${s.name} at 0x${s.address.toString(16)} overlaps ${o.f.segname} in memory`, {value: s.address})
      }
    }
    const fileoff = placeBeforeLinkedit(m, s.payload, s.address + vmsize)
    const last = m.chunks[m.chunks.length - 1]
    if (s.payload.length) last.segment = s.name
    const sections: SectionFields[] = (s.sections ?? []).map(x => ({
      sectname: x.sectname, segname: s.name, addr: x.addr, size: x.size,
      offset: Number(fileoff + (x.addr - s.address)), align: x.align ?? 3, reloff: 0, nreloc: 0, flags: 0,
      reserved1: 0, reserved2: 0, reserved3: 0,
    }))
    const prot = s.initprot ?? VM_PROT_READ | VM_PROT_WRITE
    const cmd: CommandOf<'segment'> = {kind: 'segment', sections, f: {
      cmd: LC.LC_SEGMENT_64, cmdsize: SegmentCommand64.size + Section64.size * sections.length, segname: s.name,
      vmaddr: s.address, vmsize, fileoff: s.payload.length ? fileoff : 0n, filesize: BigInt(s.payload.length),
      maxprot: s.maxprot ?? prot, initprot: prot, nsects: sections.length, flags: 0,
    }}
    const leIndex = m.commands.indexOf(linkeditSegment(m))
    const segIndex = segmentCommands(m).indexOf(linkeditSegment(m))
    insertCommand(m, cmd, leIndex)
    growChainedStarts(m, segIndex)
  }
}

/** Keep seg_count equal to the number of segments: a new segment has no chained fixups. */
function growChainedStarts(m: MachoFile, segIndex: number): void {
  const lc = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)
  if (!lc) return
  const cf = readChainedFixups(readFileRange(m, BigInt(lc.f.dataoff), BigInt(lc.f.datasize)))
  cf.segments.splice(segIndex, 0, null)
  layoutChainedFixups(cf)
  const le = linkeditSegment(m)
  relayoutLinkedit(m, le.f.fileoff, le.f.vmaddr, new Map([['LC_DYLD_CHAINED_FIXUPS', writeChainedFixups(cf)]]))
}

const inRanges = (off: bigint, len: bigint, ranges: Repoint['fromMemory']): boolean =>
  ranges.some(r => off < r.offset + r.length && r.offset < off + len)

/** Re-point every segment of `list` (in load-command order, as dyld requires of file order). */
export function repointSegments(m: MachoFile, list: Repoint[]): number {
  const segs = segmentCommands(m)
  const order = (r: Repoint) => segs.findIndex((s) => s.f.segname === r.segment)
  const sorted = [...list].sort((a, b) => order(a) - order(b))
  const later = new Set(sorted.map((r) => r.segment))
  let dropped = 0
  for (const r of sorted) {
    later.delete(r.segment)
    dropped += repointSegment(m, r, later)
  }
  return dropped
}

/**
 * `pending`: segments that a later call re-points anyway; their bytes are not moved here
 * (moving them would leave a dead copy in the file).
 */
export function repointSegment(m: MachoFile, r: Repoint, pending: ReadonlySet<string> = new Set()): number {
  const seg = findSegment(m, r.segment)
  if (!seg) throw edit('MACHO_NO_SEGMENT', `no segment ${r.segment}`, {value: r.segment})
  if (BigInt(r.bytes.length) > seg.f.vmsize) throw edit('MACHO_BAD_LAYOUT', `${r.bytes.length} bytes for ${r.segment} exceed its vmsize ${seg.f.vmsize}`)
  const dropped = dropFixups(m, segmentCommands(m).indexOf(seg), seg, r.fromMemory)
  placeSegmentBytes(m, seg, r.bytes)
  for (const s of seg.sections) {
    // Zero-fill sections now have bytes in the file: make them regular so tools show them.
    // Not thread-local zero fill: dyld finds the TLS template by section type.
    if (isZerofill(s.flags) && (s.flags & 0xff) !== S_THREAD_LOCAL_ZEROFILL && s.addr - seg.f.vmaddr + s.size <= seg.f.filesize) {
      s.flags = s.flags & ~0xff
      s.offset = Number(seg.f.fileoff + (s.addr - seg.f.vmaddr))
    }
  }
  // dyld requires file order = load command order (mach_o::Header::validSemanticsSegments):
  // every later segment's bytes move after the re-pointed ones, unchanged. The old copies
  // stay in the file, outside every segment.
  const segs = segmentCommands(m)
  for (const later of segs.slice(segs.indexOf(seg) + 1)) {
    if (later.f.segname === '__LINKEDIT' || later.f.filesize === 0n || pending.has(later.f.segname)) continue
    placeSegmentBytes(m, later, readFileRange(m, later.f.fileoff, later.f.filesize))
  }
  return dropped
}

/** Give `seg` new file bytes at the current __LINKEDIT position; section offsets follow. */
function placeSegmentBytes(m: MachoFile, seg: CommandOf<'segment'>, bytes: Buffer): void {
  const old = seg.f.fileoff
  const fileoff = placeBeforeLinkedit(m, bytes, 0n)
  m.chunks[m.chunks.length - 1].segment = seg.f.segname
  for (const c of m.chunks) if (c.segment === seg.f.segname && c.offset !== fileoff) c.segment = null
  seg.f.fileoff = fileoff
  seg.f.filesize = BigInt(bytes.length)
  for (const s of seg.sections) {
    if (s.offset === 0 || isZerofill(s.flags)) continue
    s.offset = Number(BigInt(s.offset) - old + fileoff)
  }
}

/** Remove every fixup whose target lies in a range taken from memory; returns how many. */
function dropFixups(m: MachoFile, segIndex: number, seg: CommandOf<'segment'>, ranges: Repoint['fromMemory']): number {
  let dropped = 0
  const chained = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)
  const le = linkeditSegment(m)
  const replace = new Map<string, Buffer>()
  if (chained) {
    const cf = readChainedFixups(readFileRange(m, BigInt(chained.f.dataoff), BigInt(chained.f.datasize)))
    const starts = cf.segments[segIndex]
    if (starts) {
      const ps = BigInt(starts.f.page_size)
      for (const x of ranges) if (x.offset % ps || x.length % ps) throw edit('MACHO_BAD_LAYOUT', `memory range ${x.offset}+${x.length} of ${seg.f.segname} is not aligned to the chained-fixup page size ${ps}`)
      starts.pageStarts = starts.pageStarts.map((p, i) => {
        // A chain never leaves its page (fixup-chains.h): a page from memory holds resolved pointers, not a chain.
        if (p !== 0xffff && inRanges(BigInt(i) * ps, ps, ranges)) { dropped++; return 0xffff }
        return p
      })
      replace.set('LC_DYLD_CHAINED_FIXUPS', writeChainedFixups(cf))
    }
  }
  const info = findCommand(m, 'dyld_info')
  if (info) {
    const keep = <T extends {segment: number; offset: bigint}>(list: T[]): T[] => list.filter(e => !(e.segment === segIndex && inRanges(e.offset, 8n, ranges)))
    const rebases = decodeRebase(readFileRange(m, BigInt(info.f.rebase_off), BigInt(info.f.rebase_size)))
    const keptR = keep(rebases)
    if (keptR.length !== rebases.length) { dropped += rebases.length - keptR.length; replace.set('rebase', encodeRebase(keptR)) }
    for (const kind of ['bind', 'weak_bind'] as const) {
      const binds = decodeBind(readFileRange(m, BigInt(info.f[`${kind}_off`]), BigInt(info.f[`${kind}_size`])))
      const kept = keep(binds)
      if (kept.length !== binds.length) { dropped += binds.length - kept.length; replace.set(kind, encodeBind(kept)) }
    }
  }
  if (replace.size) relayoutLinkedit(m, le.f.fileoff, le.f.vmaddr, replace)
  return dropped
}

export interface EditPlan {repoint?: Repoint[]; segments?: NewSegment[]; identifier?: string}

/** Strip the signature, apply the edits, re-sign ad hoc (identifier kept). */
export function editMacho(m: MachoFile, plan: EditPlan): EditResult {
  const segs = plan.segments ?? []
  const signed = findCommand(m, 'linkedit_data', LC.LC_CODE_SIGNATURE) !== undefined
  const need = loadCommandsEnd(m) - (signed ? 16 : 0) + commandBytesNeeded(segs, true)
  if (need > firstSectionOffset(m)) throw noRoom(need, firstSectionOffset(m))
  const stripped = stripSignature(m)
  let droppedFixups = 0
  droppedFixups += repointSegments(m, plan.repoint ?? [])
  insertSegments(m, segs)
  signAdhoc(m, {identifier: stripped.identifier ?? plan.identifier ?? 'imgdump-image', pageSizeLog2: stripped.pageSizeLog2})
  return {warnings: stripped.warnings, droppedFixups}
}
