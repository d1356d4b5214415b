/** The public surface of the ELF model (see docs/elf.md). */
export * from './definitions.js'
export {ElfError, type ElfErrorCode} from './errors.js'
export type {Content, ElfFile, Patch, Section, TailSegment, UndoEntry} from './model.js'
export {machinePageSize} from './model.js'
export {parseElf} from './reader.js'
export {layoutElf, readBytes, modelReader, contentEnd, type ElfLayout, type LayoutPiece, type PieceKind} from './layout.js'
export {serializeElf, writeElfToFd, type SerializeOptions, type FdWriteOptions} from './writer.js'
export {
  moveProgramHeaders, addLoad, addNote, addNoteSegment, repointLoad, appendExternal, appendBytes, patchBytes,
  neutraliseRelocation, dropRelrAddresses, setDynamicValue, setSectionHeader, applyUndo, type AddLoadOptions,
} from './edit.js'
export {vaddrToOffset, offsetToVaddr, requireFileRange, loadedOffset, requireLoadedRange} from './addresses.js'
export {readDynamic, readDynamicTable, readInterpreter, type DynamicInfo, type DynamicTableEntry} from './dynamic.js'
export {readDynamicRelocations, relocationTypeName, leadingRelativeCount, encodeRelr, decodeRelr, type DynamicRelocations, type Relocation} from './relocations.js'
export {
  readNotes, parseNotes, noteSegments, readNoteAreas, encodeNote, buildId, abiTag, gnuProperties, type Note, type NoteArea, type NoteReadOptions,
  type GnuProperty,
} from './notes.js'
export {readSymbols, symbolTables, symbolCount, type ElfSymbol} from './symbols.js'
export {describeElf, type ElfDescription, type ElfKind} from './describe.js'
export {bufferSource, fdSource, type ByteReader, type ByteSource} from './byte-source.js'
export {ElfScan, type ScannedSection} from './scan.js'
