/**
 * The editable model of one Mach-O 64 file: the header and every load command as parsed
 * field values, and the file body after the load commands as chunks (one per segment's
 * file range, plus any bytes no segment covers, so nothing is lost). The writer serialises
 * this model; it never hands back the input buffer.
 */
import {MachoError, truncated} from './errors.js'
import type {StructDef, StructValue} from '../binary/field-table.js'
import type {
  BuildToolVersion, BuildVersionCommand, DyldInfoCommand, DylibCommand, DysymtabCommand, EntryPointCommand,
  LinkeditDataCommand, MachHeader64, NoteCommand, Section64, SegmentCommand64, SourceVersionCommand,
  StringCommand, SymtabCommand, UuidCommand, VersionMinCommand,
} from './definitions.js'

type F<S extends StructDef> = StructValue<S>

export type HeaderFields = F<typeof MachHeader64>
export type SegmentFields = F<typeof SegmentCommand64>
export type SectionFields = F<typeof Section64>

export type LoadCommand =
  | {kind: 'segment'; f: SegmentFields; sections: SectionFields[]}
  | {kind: 'symtab'; f: F<typeof SymtabCommand>}
  | {kind: 'dysymtab'; f: F<typeof DysymtabCommand>}
  | {kind: 'dyld_info'; f: F<typeof DyldInfoCommand>}
  | {kind: 'linkedit_data'; f: F<typeof LinkeditDataCommand>}
  | {kind: 'dylib'; f: F<typeof DylibCommand>; path: string}
  | {kind: 'string'; f: F<typeof StringCommand>; text: string}
  | {kind: 'uuid'; f: F<typeof UuidCommand>}
  | {kind: 'build_version'; f: F<typeof BuildVersionCommand>; tools: F<typeof BuildToolVersion>[]}
  | {kind: 'version_min'; f: F<typeof VersionMinCommand>}
  | {kind: 'main'; f: F<typeof EntryPointCommand>}
  | {kind: 'source_version'; f: F<typeof SourceVersionCommand>}
  | {kind: 'note'; f: F<typeof NoteCommand>}
  /** A command this model does not decode: carried through as its bytes. */
  | {kind: 'opaque'; f: {cmd: number; cmdsize: number}; bytes: Buffer}

export type CommandOf<K extends LoadCommand['kind']> = Extract<LoadCommand, {kind: K}>

/** File bytes at `offset`; `segment` names the segment whose file range holds them, if any. */
export interface Chunk {offset: bigint; bytes: Buffer; segment: string | null}

export interface MachoFile {
  header: HeaderFields
  commands: LoadCommand[]
  chunks: Chunk[]
}

export const HEADER_SIZE = 32

export function segmentCommands(m: MachoFile): CommandOf<'segment'>[] {
  return m.commands.filter((c): c is CommandOf<'segment'> => c.kind === 'segment')
}

export function findSegment(m: MachoFile, name: string): CommandOf<'segment'> | undefined {
  return segmentCommands(m).find(s => s.f.segname === name)
}

export function findCommand<K extends LoadCommand['kind']>(m: MachoFile, kind: K, cmd?: number): CommandOf<K> | undefined {
  return m.commands.find(c => c.kind === kind && (cmd === undefined || c.f.cmd === cmd)) as CommandOf<K> | undefined
}

function fileSizeOf(m: MachoFile): bigint {
  let end = BigInt(HEADER_SIZE + m.header.sizeofcmds)
  for (const c of m.chunks) { const e = c.offset + BigInt(c.bytes.length); if (e > end) end = e }
  return end
}

/** Read `length` bytes at file offset `offset` from the chunks (zero where nothing is stored). */
export function readFileRange(m: MachoFile, offset: bigint, length: bigint, zeroPastEof = false): Buffer {
  // Lengths come from load command fields: never allocate past what the file holds
  // (except when growing a segment on purpose, which reads zeros past EOF).
  const size = fileSizeOf(m)
  if (offset < 0n || length < 0n || (!zeroPastEof && offset + length > size)) throw truncated('file range', offset, length, offset > size ? 0n : size - offset)
  const out = Buffer.alloc(Number(length))
  for (const c of m.chunks) {
    const s = c.offset > offset ? c.offset : offset
    const e0 = c.offset + BigInt(c.bytes.length), e1 = offset + length
    const e = e0 < e1 ? e0 : e1
    if (s < e) c.bytes.copy(out, Number(s - offset), Number(s - c.offset), Number(e - c.offset))
  }
  return out
}

/** Deep copy of a model (chunks' bytes copied too), so edits never touch the source. */
export function cloneMacho(m: MachoFile): MachoFile {
  const copyVal = (v: unknown): unknown => Buffer.isBuffer(v) ? Buffer.from(v) : Array.isArray(v) ? v.map(copyVal) :
    v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copyVal(x)])) : v
  return {header: {...m.header}, commands: m.commands.map(c => copyVal(c) as LoadCommand),
    chunks: m.chunks.map(c => ({offset: c.offset, bytes: Buffer.from(c.bytes), segment: c.segment}))}
}

/**
 * Keep the chunk after the load commands in step with their size: growing commands take
 * header padding (which must be zero: real bytes there mean no room), shrinking commands
 * give back zeros.
 */
function moveCommandsEnd(m: MachoFile, oldEnd: number, newEnd: number): void {
  const c = m.chunks.find(x => x.offset === BigInt(oldEnd))
  if (newEnd > oldEnd) {
    if (!c) return
    const taken = c.bytes.subarray(0, newEnd - oldEnd)
    if (taken.length < newEnd - oldEnd || taken.some(b => b !== 0)) {
      throw new MachoError('edit', 'MACHO_NO_ROOM', `no free header room for ${newEnd - oldEnd} more bytes of load commands`, {offset: oldEnd,
        hint: 'relink the runtime with -Wl,-headerpad,0x1000 to leave room for the image load commands'})
    }
    c.bytes = c.bytes.subarray(newEnd - oldEnd)
    c.offset = BigInt(newEnd)
  } else if (newEnd < oldEnd) {
    if (c) { c.bytes = Buffer.concat([Buffer.alloc(oldEnd - newEnd), c.bytes]); c.offset = BigInt(newEnd) }
    else m.chunks.push({offset: BigInt(newEnd), bytes: Buffer.alloc(oldEnd - newEnd), segment: null})
  }
}

export function insertCommand(m: MachoFile, cmd: LoadCommand, index = m.commands.length): void {
  const oldEnd = HEADER_SIZE + m.header.sizeofcmds
  moveCommandsEnd(m, oldEnd, oldEnd + cmd.f.cmdsize)
  m.commands.splice(index, 0, cmd)
  m.header.ncmds += 1
  m.header.sizeofcmds += cmd.f.cmdsize
}

export function removeCommand(m: MachoFile, cmd: LoadCommand): void {
  const i = m.commands.indexOf(cmd)
  if (i < 0) throw new Error('internal: removing a command not in the model')
  const oldEnd = HEADER_SIZE + m.header.sizeofcmds
  m.commands.splice(i, 1)
  m.header.ncmds -= 1
  m.header.sizeofcmds -= cmd.f.cmdsize
  moveCommandsEnd(m, oldEnd, oldEnd - cmd.f.cmdsize)
}
