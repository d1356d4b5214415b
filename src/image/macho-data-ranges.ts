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
 * descriptors carry per-process keys. Such a page that also holds other sections' bytes is
 * refused (MACHO_TLS_SHARED_PAGE): taking it from the file would silently bring those globals
 * back with their link-time values. Classic rebases and binds into memory pages are dropped by
 * the writer (src/macho/edit-segments.ts `repointSegment`).
 */
import {hex} from '../binary/hex.js'
import {LC} from '../macho/definitions.js'
import {readChainedFixups} from '../macho/chained-fixups.js'
import {MachoError} from '../macho/errors.js'
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
  fileoff: bigint
  filesize: bigint
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
    const ranged = (tls: boolean) => seg.sections.filter((s) => THREAD_LOCAL_TYPES.has(s.flags & 0xff) === tls && s.size > 0n)
      .map((s) => ({name: s.sectname, offset: s.addr - f.vmaddr, length: s.size}))
    const threadLocal = ranged(true)
    const others = ranged(false)
    const fromMemory: SegmentRange[] = []
    const fromFile: SegmentRange[] = []
    for (let at = 0n; at < f.vmsize; at += unit) {
      const length = f.vmsize - at < unit ? f.vmsize - at : unit
      const inPage = (r: {offset: bigint; length: bigint}) => r.offset < at + length && at < r.offset + r.length
      const tls = threadLocal.find(inPage)
      const shared = tls && others.find(inPage)
      if (tls && shared) {
        throw new MachoError('edit', 'MACHO_TLS_SHARED_PAGE',
          `${f.segname}: the page at ${hex(f.vmaddr + at)} holds thread-local ${tls.name} and ${shared.name}; it must come from the file, which would reset ${shared.name}`,
          {value: f.vmaddr + at, hint: `align the thread-local sections to their own ${unit}-byte pages, or keep the runtime's state out of ${shared.name}`})
      }
      const list = tls ? fromFile : fromMemory
      const last = list.at(-1)
      if (last && last.offset + last.length === at) last.length += length
      else list.push({offset: at, length})
    }
    out.push({name: f.segname, vmaddr: f.vmaddr, vmsize: f.vmsize, fileoff: f.fileoff, filesize: f.filesize, fromMemory, fromFile})
  })
  return out
}

/** The segment's file bytes zero-padded to its vmsize (call after the size cap was checked). */
export function dataSegmentBytes(m: MachoFile, d: MachoDataSegment): Buffer {
  const out = Buffer.alloc(Number(d.vmsize))
  readFileRange(m, d.fileoff, d.filesize).copy(out)
  return out
}
