/** Parse a Mach-O 64 file (one slice) into the model; every read is bounds-checked. */
import {
  BuildToolVersion, BuildVersionCommand, DyldInfoCommand, DylibCommand, DysymtabCommand, EntryPointCommand, LC,
  LC_NAMES, LinkeditDataCommand, LoadCommandHeader, MH_CIGAM_64, MH_MAGIC, MH_MAGIC_64, MachHeader64, NoteCommand,
  Section64, SegmentCommand64, SourceVersionCommand, StringCommand, SymtabCommand, UuidCommand, VersionMinCommand,
  FAT_MAGIC, FAT_MAGIC_64,
} from './definitions.js'
import {type StructDef, type StructValue, decodeStruct} from '../binary/field-table.js'
import {MachoError, truncated} from './errors.js'
import {type Chunk, HEADER_SIZE, type LoadCommand, type MachoFile} from './model.js'

const KIND_BY_CMD: Record<number, LoadCommand['kind']> = {
  [LC.LC_SEGMENT_64]: 'segment', [LC.LC_SYMTAB]: 'symtab', [LC.LC_DYSYMTAB]: 'dysymtab',
  [LC.LC_DYLD_INFO]: 'dyld_info', [LC.LC_DYLD_INFO_ONLY]: 'dyld_info',
  [LC.LC_CODE_SIGNATURE]: 'linkedit_data', [LC.LC_SEGMENT_SPLIT_INFO]: 'linkedit_data', [LC.LC_FUNCTION_STARTS]: 'linkedit_data',
  [LC.LC_DATA_IN_CODE]: 'linkedit_data', [LC.LC_DYLIB_CODE_SIGN_DRS]: 'linkedit_data', [LC.LC_LINKER_OPTIMIZATION_HINT]: 'linkedit_data',
  [LC.LC_DYLD_EXPORTS_TRIE]: 'linkedit_data', [LC.LC_DYLD_CHAINED_FIXUPS]: 'linkedit_data',
  [LC.LC_LOAD_DYLIB]: 'dylib', [LC.LC_ID_DYLIB]: 'dylib', [LC.LC_LOAD_WEAK_DYLIB]: 'dylib', [LC.LC_REEXPORT_DYLIB]: 'dylib',
  [LC.LC_LAZY_LOAD_DYLIB]: 'dylib', [LC.LC_LOAD_UPWARD_DYLIB]: 'dylib',
  [LC.LC_LOAD_DYLINKER]: 'string', [LC.LC_ID_DYLINKER]: 'string', [LC.LC_DYLD_ENVIRONMENT]: 'string', [LC.LC_RPATH]: 'string',
  [LC.LC_UUID]: 'uuid', [LC.LC_BUILD_VERSION]: 'build_version', [LC.LC_VERSION_MIN_MACOSX]: 'version_min',
  [LC.LC_MAIN]: 'main', [LC.LC_SOURCE_VERSION]: 'source_version', [LC.LC_NOTE]: 'note',
}
function commandKind(cmd: number): LoadCommand['kind'] { return KIND_BY_CMD[cmd >>> 0] ?? 'opaque' }
export function commandName(cmd: number): string { return LC_NAMES[cmd >>> 0] ?? `LC_0x${(cmd >>> 0).toString(16)}` }

export function isMacho64(buf: Buffer): boolean { return buf.length >= 4 && buf.readUInt32LE(0) === MH_MAGIC_64 }
export function isFat(buf: Buffer): boolean { return buf.length >= 4 && [FAT_MAGIC, FAT_MAGIC_64].includes(buf.readUInt32BE(0)) }

export function readMacho(buf: Buffer): MachoFile {
  if (buf.length < 4) throw truncated('mach_header_64', 0, HEADER_SIZE, buf.length)
  const magic = buf.readUInt32LE(0)
  if (magic !== MH_MAGIC_64) {
    const why = magic === MH_CIGAM_64 ? 'big-endian Mach-O is not supported' : magic === MH_MAGIC ? '32-bit Mach-O is not supported' :
      isFat(buf) ? 'this is a fat (universal) file: pick a slice with --arch' : 'not a Mach-O 64 file'
    throw new MachoError('parse', 'MACHO_BAD_MAGIC', `${why} (magic 0x${magic.toString(16)})`, {offset: 0, value: magic})
  }
  const header = decodeStruct(MachHeader64, buf, 0)
  const end = HEADER_SIZE + header.sizeofcmds
  if (end > buf.length) throw truncated('load commands', HEADER_SIZE, header.sizeofcmds, buf.length - HEADER_SIZE)
  // Each command needs ≥ 8 bytes: cap the count by the room so a lying ncmds cannot loop long.
  if (header.ncmds > header.sizeofcmds / 8) {
    throw new MachoError('parse', 'MACHO_BAD_COMMAND', `ncmds ${header.ncmds} cannot fit in sizeofcmds ${header.sizeofcmds}`, {offset: 16, value: header.ncmds})
  }
  const commands: LoadCommand[] = []
  let at = HEADER_SIZE
  for (let i = 0; i < header.ncmds; i++) {
    const {cmd, cmdsize} = decodeStruct(LoadCommandHeader, buf, at)
    if (cmdsize < 8 || cmdsize % 8 !== 0 || at + cmdsize > end) {
      throw new MachoError('parse', 'MACHO_BAD_COMMAND', `load command ${i} (${commandName(cmd)}) has bad cmdsize ${cmdsize}`, {offset: at + 4, value: cmdsize})
    }
    commands.push(readCommand(buf.subarray(at, at + cmdsize), at))
    at += cmdsize
  }
  if (at !== end) throw new MachoError('parse', 'MACHO_BAD_COMMAND', `load commands end at ${at}, sizeofcmds says ${end}`, {offset: 20, value: header.sizeofcmds})
  return {header, commands, chunks: chunksOf(buf, commands, end)}
}

function readCommand(b: Buffer, fileOffset: number): LoadCommand {
  const cmd = b.readUInt32LE(0)
  const bad = (why: string): MachoError => new MachoError('parse', 'MACHO_BAD_COMMAND', `${commandName(cmd)}: ${why}`, {offset: fileOffset, value: cmd})
  const fixed = <S extends StructDef>(s: S): StructValue<S> => { if (b.length < s.size) throw bad(`cmdsize ${b.length} < ${s.size}`); return decodeStruct(s, b, 0) }
  const str = (off: number): string => {
    if (off >= b.length) throw bad(`string offset ${off} outside the command`)
    const nul = b.indexOf(0, off)
    return b.subarray(off, nul < 0 ? b.length : nul).toString('utf8')
  }
  switch (commandKind(cmd)) {
    case 'segment': {
      const f = fixed(SegmentCommand64)
      if (SegmentCommand64.size + f.nsects * Section64.size !== b.length) throw bad(`nsects ${f.nsects} does not match cmdsize ${b.length}`)
      const sections = Array.from({length: f.nsects}, (_, i) => decodeStruct(Section64, b, SegmentCommand64.size + i * Section64.size))
      return {kind: 'segment', f, sections}
    }
    case 'symtab': return {kind: 'symtab', f: fixed(SymtabCommand)}
    case 'dysymtab': return {kind: 'dysymtab', f: fixed(DysymtabCommand)}
    case 'dyld_info': return {kind: 'dyld_info', f: fixed(DyldInfoCommand)}
    case 'linkedit_data': return {kind: 'linkedit_data', f: fixed(LinkeditDataCommand)}
    case 'dylib': { const f = fixed(DylibCommand); return {kind: 'dylib', f, path: str(f.name)} }
    case 'string': { const f = fixed(StringCommand); return {kind: 'string', f, text: str(f.name)} }
    case 'uuid': return {kind: 'uuid', f: fixed(UuidCommand)}
    case 'build_version': {
      const f = fixed(BuildVersionCommand)
      if (BuildVersionCommand.size + f.ntools * BuildToolVersion.size > b.length) throw bad(`ntools ${f.ntools} does not fit`)
      return {kind: 'build_version', f, tools: Array.from({length: f.ntools}, (_, i) => decodeStruct(BuildToolVersion, b, BuildVersionCommand.size + i * 8))}
    }
    case 'version_min': return {kind: 'version_min', f: fixed(VersionMinCommand)}
    case 'main': return {kind: 'main', f: fixed(EntryPointCommand)}
    case 'source_version': return {kind: 'source_version', f: fixed(SourceVersionCommand)}
    case 'note': return {kind: 'note', f: fixed(NoteCommand)}
    case 'opaque': return {kind: 'opaque', f: {cmd, cmdsize: b.length}, bytes: Buffer.from(b)}
  }
}

/**
 * Partition the body [end of load commands, EOF) at every segment boundary; each piece
 * belongs to the first segment whose file range holds it (or none), adjacent pieces of the
 * same owner are merged.
 */
function chunksOf(buf: Buffer, commands: LoadCommand[], bodyStart: number): Chunk[] {
  const eof = BigInt(buf.length), start = BigInt(bodyStart)
  const segs = commands.flatMap(c => c.kind === 'segment' && c.f.filesize > 0n ? [c.f] : [])
  const cuts = new Set<bigint>([start, eof])
  for (const s of segs) for (const p of [s.fileoff, s.fileoff + s.filesize]) if (p > start && p < eof) cuts.add(p)
  const points = [...cuts].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const chunks: Chunk[] = []
  for (let i = 0; i + 1 < points.length; i++) {
    const a = points[i], z = points[i + 1]
    const owner = segs.find(s => s.fileoff <= a && s.fileoff + s.filesize >= z)?.segname ?? null
    const last = chunks[chunks.length - 1]
    if (last && last.segment === owner && last.offset + BigInt(last.bytes.length) === a) {
      last.bytes = Buffer.concat([last.bytes, buf.subarray(Number(a), Number(z))])
    } else chunks.push({offset: a, bytes: Buffer.from(buf.subarray(Number(a), Number(z))), segment: owner})
  }
  return chunks
}
