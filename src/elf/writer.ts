/**
 * Writing, in two phases (DESIGN §9 rule 3): layoutElf reserves every range, then the
 * pieces are written in the same order, asserting that each starts where the previous ended.
 */
import {ftruncateSync, writeSync} from 'node:fs'
import {applyPatches, layoutElf, type ElfLayout} from './layout.js'
import type {ElfFile} from './model.js'

export interface SerializeOptions {
  /** External ranges: 'zero' fills them with zeros, 'error' (default) refuses to serialise them. */
  readonly external?: 'zero' | 'error'
}

/** The whole output file as bytes. */
export function serializeElf(elf: ElfFile, options: SerializeOptions = {}): Uint8Array {
  const layout = layoutElf(elf)
  const out = new Uint8Array(Number(layout.size))
  let cursor = 0n
  for (const p of layout.pieces) {
    assertAt(p.offset, cursor, p.source)
    if (p.kind === 'external' && options.external !== 'zero') {
      throw new Error(`serializeElf: ${p.source} is filled by someone else; use writeElfToFd or {external: 'zero'}`)
    }
    const bytes = p.render()
    if (BigInt(bytes.length) !== p.length) throw new Error(`writer: ${p.source} rendered ${bytes.length} bytes, reserved ${p.length}`)
    out.set(bytes, Number(p.offset))
    cursor = p.offset + p.length
  }
  applyPatches(elf, 0n, out)
  return out
}

export interface FdWriteOptions {
  /** Set the file's size to the layout's size (extends with a hole, or cuts). Default false. */
  readonly truncate?: boolean
}

/**
 * Write every piece except the external ones at its offset of `fd` (pwrite), so that another
 * process may fill the external ranges before or after. Returns the layout written.
 */
export function writeElfToFd(elf: ElfFile, fd: number, options: FdWriteOptions = {}): ElfLayout {
  const layout = layoutElf(elf)
  let cursor = 0n
  for (const p of layout.pieces) {
    assertAt(p.offset, cursor, p.source)
    cursor = p.offset + p.length
    if (p.kind === 'external' || p.kind === 'padding') continue
    const bytes = new Uint8Array(p.render())
    applyPatches(elf, p.offset, bytes)
    let done = 0
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, Number(p.offset) + done)
  }
  if (options.truncate) ftruncateSync(fd, Number(layout.size))
  return layout
}

function assertAt(offset: bigint, cursor: bigint, what: string): void {
  if (offset !== cursor) throw new Error(`writer: ${what} reserved at 0x${offset.toString(16)} but the output is at 0x${cursor.toString(16)}`)
}
