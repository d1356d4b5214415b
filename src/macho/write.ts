/**
 * Serialise the model. Two phases (DESIGN §9 rule 3): reserve every range (header + load
 * commands, then each chunk) and refuse overlaps, then write each range at its asserted offset.
 */
import {
  BuildToolVersion, BuildVersionCommand, DyldInfoCommand, DylibCommand, DysymtabCommand, EntryPointCommand,
  LinkeditDataCommand, MachHeader64, NoteCommand, Section64, SegmentCommand64, SourceVersionCommand, StringCommand,
  SymtabCommand, UuidCommand, VersionMinCommand,
} from './definitions.js'
import {encodeStruct} from '../binary/field-table.js'
import {MachoError} from './errors.js'
import {HEADER_SIZE, type LoadCommand, type MachoFile} from './model.js'
import {commandName} from './read.js'

function encodeCommand(c: LoadCommand): Buffer {
  const out = Buffer.alloc(c.f.cmdsize)
  const fail = (why: string): never => { throw new MachoError('write', 'MACHO_BAD_COMMAND', `${commandName(c.f.cmd)}: ${why}`, {value: c.f.cmdsize}) }
  const need = (n: number) => { if (n > c.f.cmdsize) fail(`needs ${n} bytes, cmdsize is ${c.f.cmdsize}`) }
  const putString = (at: number, s: string) => { const b = Buffer.from(s, 'utf8'); need(at + b.length + 1); b.copy(out, at) }
  switch (c.kind) {
    case 'segment':
      if (c.f.nsects !== c.sections.length || c.f.cmdsize !== SegmentCommand64.size + Section64.size * c.sections.length) fail('nsects/cmdsize disagree with the sections')
      encodeStruct(SegmentCommand64, c.f, out, 0)
      c.sections.forEach((s, i) => encodeStruct(Section64, s, out, SegmentCommand64.size + i * Section64.size))
      break
    case 'symtab': need(SymtabCommand.size); encodeStruct(SymtabCommand, c.f, out, 0); break
    case 'dysymtab': need(DysymtabCommand.size); encodeStruct(DysymtabCommand, c.f, out, 0); break
    case 'dyld_info': need(DyldInfoCommand.size); encodeStruct(DyldInfoCommand, c.f, out, 0); break
    case 'linkedit_data': need(LinkeditDataCommand.size); encodeStruct(LinkeditDataCommand, c.f, out, 0); break
    case 'dylib': need(DylibCommand.size); encodeStruct(DylibCommand, c.f, out, 0); putString(c.f.name, c.path); break
    case 'string': need(StringCommand.size); encodeStruct(StringCommand, c.f, out, 0); putString(c.f.name, c.text); break
    case 'uuid': need(UuidCommand.size); encodeStruct(UuidCommand, c.f, out, 0); break
    case 'build_version':
      if (c.f.ntools !== c.tools.length) fail('ntools disagrees with the tools')
      need(BuildVersionCommand.size + 8 * c.tools.length)
      encodeStruct(BuildVersionCommand, c.f, out, 0)
      c.tools.forEach((t, i) => encodeStruct(BuildToolVersion, t, out, BuildVersionCommand.size + 8 * i))
      break
    case 'version_min': need(VersionMinCommand.size); encodeStruct(VersionMinCommand, c.f, out, 0); break
    case 'main': need(EntryPointCommand.size); encodeStruct(EntryPointCommand, c.f, out, 0); break
    case 'source_version': need(SourceVersionCommand.size); encodeStruct(SourceVersionCommand, c.f, out, 0); break
    case 'note': need(NoteCommand.size); encodeStruct(NoteCommand, c.f, out, 0); break
    case 'opaque': if (c.bytes.length !== c.f.cmdsize) fail('opaque bytes disagree with cmdsize'); c.bytes.copy(out); break
  }
  return out
}

export function writeMacho(m: MachoFile): Buffer {
  const cmds = m.commands.map(encodeCommand)
  const sizeofcmds = cmds.reduce((n, b) => n + b.length, 0)
  if (m.header.ncmds !== cmds.length || m.header.sizeofcmds !== sizeofcmds) {
    throw new MachoError('write', 'MACHO_BAD_LAYOUT', `header says ${m.header.ncmds} commands / ${m.header.sizeofcmds} bytes, model has ${cmds.length} / ${sizeofcmds}`)
  }
  // Phase 1: reserve.
  const ranges = [{start: 0n, end: BigInt(HEADER_SIZE + sizeofcmds), what: 'header and load commands'}]
  for (const c of m.chunks) ranges.push({start: c.offset, end: c.offset + BigInt(c.bytes.length), what: `bytes of ${c.segment ?? 'no segment'}`})
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].end) {
      throw new MachoError('write', 'MACHO_BAD_LAYOUT', `${sorted[i].what} at ${sorted[i].start} overlaps ${sorted[i - 1].what} ending at ${sorted[i - 1].end}`, {offset: sorted[i].start})
    }
  }
  const size = sorted.reduce((n, r) => (r.end > n ? r.end : n), 0n)
  if (size > BigInt(2 ** 31)) throw new MachoError('write', 'MACHO_UNSUPPORTED', `image of ${size} bytes exceeds the in-memory writer`, {value: size})
  // Phase 2: write, asserting each offset.
  const out = Buffer.alloc(Number(size))
  encodeStruct(MachHeader64, m.header, out, 0)
  let at = HEADER_SIZE
  for (const b of cmds) { b.copy(out, at); at += b.length }
  if (at !== HEADER_SIZE + sizeofcmds) throw new Error('internal: load command size mismatch')
  for (const c of m.chunks) c.bytes.copy(out, Number(c.offset))
  return out
}
