/**
 * The editable ELF model. A file is: the ELF header, the program header table, the section
 * header table (all kept as parsed fields), and "contents" — every other byte range of the
 * file, either as parsed table entries (symbol, dynamic and relocation tables, re-encoded
 * from their fields on write), as opaque bytes (carried unchanged), or as an *external*
 * range that someone else fills (the image planner's payload, written by another process).
 *
 * Models are immutable: edits (edit.ts) return a new model and append to its undo log.
 */
import type {DynamicEntry, ElfHeader, ProgramHeader, RelaEntry, SectionHeader, SymbolEntry} from './definitions.js'

export interface Section {
  readonly index: number
  /** Name from the section name table ('' when there is none). */
  readonly name: string
  readonly header: SectionHeader
}

export type Content =
  | {readonly kind: 'opaque'; readonly offset: bigint; readonly bytes: Uint8Array; readonly label: string}
  | {readonly kind: 'symbols'; readonly offset: bigint; readonly entries: readonly SymbolEntry[]; readonly label: string}
  | {readonly kind: 'dynamic'; readonly offset: bigint; readonly entries: readonly DynamicEntry[]; readonly label: string}
  | {readonly kind: 'rela'; readonly offset: bigint; readonly entries: readonly RelaEntry[]; readonly label: string}
  | {readonly kind: 'external'; readonly offset: bigint; readonly length: bigint; readonly label: string}

/** Bytes written over the rendered file (relocation rewrites, dynamic value fixes). */
export interface Patch {
  readonly offset: bigint
  readonly bytes: Uint8Array
}

/**
 * One undo record: the bytes that were at `offset` in the *original* file before an edit.
 * Writing every record (in reverse order) over the output and truncating it to
 * `originalSize` gives back the original file byte for byte.
 */
export interface UndoEntry {
  readonly offset: bigint
  readonly original: Uint8Array
  readonly what: string
}

export interface ElfFile {
  readonly header: ElfHeader
  readonly programHeaders: readonly ProgramHeader[]
  readonly sections: readonly Section[]
  /** Sorted by offset, non-overlapping, never overlapping the three header tables. */
  readonly contents: readonly Content[]
  readonly patches: readonly Patch[]
  readonly undo: readonly UndoEntry[]
  /** Size of the file this model was parsed from. */
  readonly originalSize: bigint
  /** Present once the program header table was moved to its own PT_LOAD at the end. */
  readonly tail?: TailSegment
  /**
   * Number of section headers written at e_shoff (= sections.length; with the extended
   * encoding e_shnum is 0 and the count lives in section 0's sh_size).
   */
  readonly sectionHeaderCount: number
}

/** The read-only PT_LOAD at the end of the file holding the moved program header table and added notes. */
export interface TailSegment {
  /** Index in programHeaders of the PT_LOAD covering the tail. */
  readonly loadIndex: number
  /** Notes placed in the tail after the program header table (each has a PT_NOTE). */
  readonly notes: readonly {readonly bytes: Uint8Array; readonly noteIndex: number}[]
  /** Page size used for the congruence of p_vaddr and p_offset. */
  readonly pageSize: bigint
}

export function machinePageSize(elf: ElfFile): bigint {
  // aarch64 kernels may run 64 KiB pages and its linkers default to max-page-size 64 KiB.
  return elf.header.e_machine === 183 ? 0x10000n : 0x1000n
}
