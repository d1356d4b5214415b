/**
 * Which bytes of a Mach-O runtime's writable segments an image takes from the process's
 * memory and which from the file (DESIGN §5, Mach-O: "start-up code runs again").
 *
 * Every writable segment that dyld does not make read-only after fixing it up (`__DATA`,
 * custom segments such as the fixtures' `__XTRA`; not `__DATA_CONST`, flag SG_READ_ONLY) is
 * re-pointed at saved bytes covering its whole vmsize, so `.bss`-like zero fill comes back
 * too. Thread-local sections stay from the file: dyld builds each thread's variables from
 * them, and their descriptors carry per-process keys. Everything else comes from memory, with
 * its fixups removed by the writer (src/macho/edit-segments.ts `repointSegment`):
 * - a segment with chained fixups goes by its chain pages (a chain never leaves its page, so a
 *   page is either all memory — resolved pointers, its chain start removed — or all file). A
 *   page holding thread-local and other sections' bytes is refused (MACHO_TLS_SHARED_PAGE):
 *   from the file it would silently bring those globals back with their link-time values;
 * - a segment without chains (classic dyld info, or no fixups) goes by bytes: rebases and
 *   binds are dropped word by word, so only the thread-local sections' bytes stay.
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
  /** segment-relative ranges written from memory (whole chain pages, or bytes), ascending */
  fromMemory: SegmentRange[]
  /** the complement: ranges kept from the file (thread-local pages or sections) */
  fromFile: SegmentRange[]
}

export function machoDataSegments(m: MachoFile, page: bigint): MachoDataSegment[] {
  const chained = findCommand(m, 'linkedit_data', LC.LC_DYLD_CHAINED_FIXUPS)
  const starts = chained ? readChainedFixups(readFileRange(m, BigInt(chained.f.dataoff), BigInt(chained.f.datasize))).segments : []
  const out: MachoDataSegment[] = []
  segmentCommands(m).forEach((seg, index) => {
    const f = seg.f
    if ((f.initprot & VM_PROT_WRITE) === 0 || (f.flags & SG_READ_ONLY) !== 0 || f.vmsize === 0n || f.segname === '__LINKEDIT') return
    const ranged = (tls: boolean) => seg.sections.filter((s) => THREAD_LOCAL_TYPES.has(s.flags & 0xff) === tls && s.size > 0n)
      .map((s) => ({name: s.sectname, offset: s.addr - f.vmaddr, length: s.size}))
    const threadLocal = ranged(true)
    const others = ranged(false)
    const fromMemory: SegmentRange[] = []
    const fromFile: SegmentRange[] = []
    const chainPage = starts[index]?.f.page_size
    if (chainPage === undefined) {
      // No chains in this segment (classic dyld info, or no fixups at all): the writer drops
      // rebases and binds word by word, so only the thread-local sections' own bytes stay.
      let at = 0n
      for (const t of [...threadLocal].sort((a, b) => (a.offset < b.offset ? -1 : 1))) {
        const start = t.offset > at ? t.offset : at
        const end = t.offset + t.length < f.vmsize ? t.offset + t.length : f.vmsize
        if (start > at) fromMemory.push({offset: at, length: start - at})
        if (end > start) {
          const last = fromFile.at(-1)
          if (last && last.offset + last.length === start) last.length += end - start
          else fromFile.push({offset: start, length: end - start})
        }
        if (end > at) at = end
      }
      if (at < f.vmsize) fromMemory.push({offset: at, length: f.vmsize - at})
      out.push({name: f.segname, vmaddr: f.vmaddr, vmsize: f.vmsize, fileoff: f.fileoff, filesize: f.filesize, fromMemory, fromFile})
      return
    }
    const unit = BigInt(chainPage)
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
