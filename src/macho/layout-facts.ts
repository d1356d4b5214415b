/** Facts about a model's layout that several edits and the verifier need. */
import {isZerofill} from './definitions.js'
import {HEADER_SIZE, type MachoFile, segmentCommands} from './model.js'

export function loadCommandsEnd(m: MachoFile): number { return HEADER_SIZE + m.header.sizeofcmds }

/** File offset of the first section that has file bytes: the load commands must end before it. */
export function firstSectionOffset(m: MachoFile): number {
  let first = Infinity
  for (const s of segmentCommands(m)) {
    for (const sec of s.sections) if (!isZerofill(sec.flags) && sec.size > 0n && sec.offset > 0 && sec.offset < first) first = sec.offset
  }
  // No section with bytes: the bound is the first segment with file bytes beyond the header.
  if (first === Infinity) {
    for (const s of segmentCommands(m)) if (s.f.filesize > 0n && s.f.fileoff > 0n && Number(s.f.fileoff) < first) first = Number(s.f.fileoff)
  }
  return first
}
