/**
 * Which bytes of a Mach-O runtime's writable segments an image takes from the process's
 * memory and which from the file (DESIGN §5, Mach-O: "start-up code runs again").
 *
 * Every writable segment that dyld does not make read-only after fixing it up (`__DATA`,
 * custom segments such as the fixtures' `__XTRA`; not `__DATA_CONST`, flag SG_READ_ONLY) is
 * re-pointed at saved bytes covering its whole vmsize, so `.bss`-like zero fill comes back
 * too. The unit is the chained-fixup page of the segment (a chain never leaves its page, so a
 * page is either all memory — resolved pointers, its chain start removed — or all file), or
 * the Mach-O page where the segment has no chained starts. Pages that hold thread-local
 * sections stay from the file: dyld builds each thread's variables from them, and their
 * descriptors carry per-process keys. Classic rebases and binds into memory pages are dropped
 * by the writer (src/macho/edit-segments.ts `repointSegment`).
 */
import {LC} from '../macho/definitions.js'
import {readChainedFixups} from '../macho/chained-fixups.js'
import {findCommand, type MachoFile, readFileRange, segmentCommands} from '../macho/model.js'

/** SG_READ_ONLY: dyld write-protects the segment after its fixups (__DATA_CONST). */
const SG_READ_ONLY = 0x10
const VM_PROT_WRITE = 2
/** S_THREAD_LOCAL_REGULAR … S_THREAD_LOCAL_INIT_FUNCTION_POINTERS (<mach-o/loader.h>). */
const THREAD_LOCAL_TYPES = new Set([0x11, 0x12, 0x13, 0x14, 0x15])

export interface SegmentRange {offset: bigint; length: bigint}

export interface MachoDataSegment {
  name: string
  /** unslid address and size of the segment */
  vmaddr: bigint
  vmsize: bigint
  /** the runtime's file bytes of the segment, zero-padded to vmsize */
  original: Buffer
  /** segment-relative ranges written from memory (whole fixup pages), ascending */
  fromMemory: SegmentRange[]
  /** the complement: ranges kept from the file (thread-local pages) */
  fromFile: SegmentRange[]
}

export function machoDataSegments(m: MachoFile, page: bigint): MachoDataSegment[] {
  const chained = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)
  const starts = chained ? readChainedFixups(readFileRange(m, BigInt(chained.f.dataoff), BigInt(chained.f.datasize))).segments : []
  const out: MachoDataSegment[] = []
  segmentCommands(m).forEach((seg, index) => {
    const f = seg.f
    if ((f.initprot & VM_PROT_WRITE) === 0 || (f.flags & SG_READ_ONLY) !== 0 || f.vmsize === 0n || f.segname === '__LINKEDIT') return
    const unit = BigInt(starts[index]?.f.page_size ?? page)
    const threadLocal = seg.sections.filter((s) => THREAD_LOCAL_TYPES.has(s.flags & 0xff))
      .map((s) => ({offset: s.addr - f.vmaddr, length: s.size}))
    const fromMemory: SegmentRange[] = []
    const fromFile: SegmentRange[] = []
    for (let at = 0n; at < f.vmsize; at += unit) {
      const length = f.vmsize - at < unit ? f.vmsize - at : unit
      const list = threadLocal.some((t) => t.offset < at + length && at < t.offset + t.length) ? fromFile : fromMemory
      const last = list.at(-1)
      if (last && last.offset + last.length === at) last.length += length
      else list.push({offset: at, length})
    }
    const original = Buffer.alloc(Number(f.vmsize))
    readFileRange(m, f.fileoff, f.filesize).copy(original)
    out.push({name: f.segname, vmaddr: f.vmaddr, vmsize: f.vmsize, original, fromMemory, fromFile})
  })
  return out
}
