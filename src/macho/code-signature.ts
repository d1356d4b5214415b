/**
 * Embedded code signatures (<kern/cs_blobs.h>): parse, verify, strip and regenerate the
 * ad-hoc signature in the shape ld64 and ld64.lld write (one SuperBlob holding one
 * CodeDirectory v0x20400, SHA-256, flags CS_ADHOC | CS_LINKER_SIGNED, exec segment =
 * __TEXT). arm64 macOS kills unsigned code, so every edited image is re-signed.
 */
import {createHash} from 'node:crypto'
import {
  BlobIndex, CodeDirectory, CSMAGIC_BLOBWRAPPER, CSMAGIC_CODEDIRECTORY, CSMAGIC_EMBEDDED_SIGNATURE, CS_ADHOC,
  CS_EXECSEG_MAIN_BINARY, CS_HASHTYPE_SHA256, CS_LINKER_SIGNED, CS_SUPPORTSEXECSEG, CSSLOT_CODEDIRECTORY, CSSLOT_SIGNATURESLOT, CPU_TYPE_ARM64, LC, pageSizeFor, LinkeditDataCommand, MH_EXECUTE, SuperBlobHeader,
} from './definitions.js'
import {MachoError} from './errors.js'
import {alignUp} from '../binary/align.js'
import {type StructValue, decodeStruct, encodeStruct} from '../binary/field-table.js'
import {sliceChecked} from './checked-slice.js'
import {type CommandOf, findSegment, insertCommand, type MachoFile, readFileRange, removeCommand} from './model.js'
import {firstSectionOffset, loadCommandsEnd} from './layout-facts.js'
import {writeMacho} from './write.js'

export type CodeDirectoryFields = StructValue<typeof CodeDirectory>
export interface ParsedCodeDirectory {
  slot: number
  offset: number
  f: CodeDirectoryFields
  identifier: string
  /** specialHashes[k-1] is the hash of special slot -k */
  specialHashes: Buffer[]
  codeHashes: Buffer[]
}
export interface ParsedSignature {
  blobs: {type: number; offset: number; magic: number; length: number; bytes: Buffer}[]
  directories: ParsedCodeDirectory[]
  /** true when a CMS blob carries a real signature (not the empty wrapper ad-hoc signing leaves) */
  hasCms: boolean
}

const badSig = (why: string, offset?: number, value?: number): MachoError =>
  new MachoError('parse', 'MACHO_BAD_SIGNATURE', `code signature: ${why}`, {offset, value})

export function parseSignature(blob: Buffer): ParsedSignature {
  const sb = decodeStruct(SuperBlobHeader, blob, 0)
  if (sb.magic !== CSMAGIC_EMBEDDED_SIGNATURE) throw badSig(`bad SuperBlob magic 0x${sb.magic.toString(16)}`, 0, sb.magic)
  if (sb.length > blob.length || sb.count > (sb.length - 12) / 8) throw badSig(`SuperBlob length ${sb.length} / count ${sb.count} do not fit`, 4, sb.length)
  const blobs: ParsedSignature['blobs'] = []
  const directories: ParsedCodeDirectory[] = []
  for (let i = 0; i < sb.count; i++) {
    const idx = decodeStruct(BlobIndex, blob, SuperBlobHeader.size + i * BlobIndex.size)
    const head = sliceChecked(blob, idx.offset, 8, `blob ${i}`)
    const magic = head.readUInt32BE(0), length = head.readUInt32BE(4)
    const bytes = sliceChecked(blob, idx.offset, length, `blob ${i}`)
    blobs.push({type: idx.type, offset: idx.offset, magic, length, bytes})
    if (magic === CSMAGIC_CODEDIRECTORY) directories.push(parseCodeDirectory(bytes, idx.type, idx.offset))
  }
  const hasCms = blobs.some(b => b.type === CSSLOT_SIGNATURESLOT && b.magic === CSMAGIC_BLOBWRAPPER && b.length > 8)
  return {blobs, directories, hasCms}
}

function parseCodeDirectory(b: Buffer, slot: number, offset: number): ParsedCodeDirectory {
  // Older directories are shorter; read into a zero-padded copy so absent fields read as 0.
  const padded = Buffer.alloc(Math.max(b.length, CodeDirectory.size)); b.copy(padded)
  const f = decodeStruct(CodeDirectory, padded, 0)
  if (f.version < 0x20400) { f.execSegBase = 0n; f.execSegLimit = 0n; f.execSegFlags = 0n }
  const hs = f.hashSize
  if (hs === 0 || f.hashOffset < hs * f.nSpecialSlots || f.hashOffset + hs * f.nCodeSlots > b.length) throw badSig('hash slots outside the directory', offset + 16, f.hashOffset)
  const nul = b.indexOf(0, f.identOffset)
  if (f.identOffset >= b.length || nul < 0) throw badSig('identifier outside the directory', offset + 20, f.identOffset)
  return {
    slot, offset, f, identifier: b.subarray(f.identOffset, nul).toString('utf8'),
    specialHashes: Array.from({length: f.nSpecialSlots}, (_, k) => Buffer.from(b.subarray(f.hashOffset - (k + 1) * hs, f.hashOffset - k * hs))),
    codeHashes: Array.from({length: f.nCodeSlots}, (_, i) => Buffer.from(b.subarray(f.hashOffset + i * hs, f.hashOffset + (i + 1) * hs))),
  }
}

export function signatureCommand(m: MachoFile): CommandOf<'linkedit_data'> | undefined {
  return m.commands.find((c): c is CommandOf<'linkedit_data'> => c.kind === 'linkedit_data' && c.f.cmd === LC.LC_CODE_SIGNATURE)
}

export function readSignature(m: MachoFile): ParsedSignature | undefined {
  const lc = signatureCommand(m)
  return lc ? parseSignature(readFileRange(m, BigInt(lc.f.dataoff), BigInt(lc.f.datasize))) : undefined
}

const hashPage = (type: number, bytes: Buffer): Buffer => {
  if (type !== CS_HASHTYPE_SHA256) throw new MachoError('verify', 'MACHO_UNSUPPORTED', `hash type ${type} (only SHA-256 is checked)`, {value: type})
  return createHash('sha256').update(bytes).digest()
}

/** Check every directory against the file: page hashes, special slots, code limit, exec segment. */
export function verifySignature(file: Buffer, m: MachoFile): string[] {
  const lc = signatureCommand(m)
  if (!lc) return ['no LC_CODE_SIGNATURE']
  const problems: string[] = []
  let sig: ParsedSignature
  try { sig = parseSignature(sliceChecked(file, lc.f.dataoff, lc.f.datasize, 'code signature')) } catch (e) { return [(e as Error).message] }
  if (sig.directories.length === 0) problems.push('no CodeDirectory')
  const text = findSegment(m, '__TEXT')
  for (const cd of sig.directories) {
    const where = `CodeDirectory (slot 0x${cd.slot.toString(16)})`
    const pageSize = 2 ** cd.f.pageSize
    if (cd.f.codeLimit !== lc.f.dataoff) problems.push(`${where}: codeLimit ${cd.f.codeLimit} != signature offset ${lc.f.dataoff}`)
    const expectSlots = Math.ceil(cd.f.codeLimit / pageSize)
    if (cd.f.nCodeSlots !== expectSlots) problems.push(`${where}: ${cd.f.nCodeSlots} code slots, ${expectSlots} pages`)
    for (let i = 0; i < cd.codeHashes.length; i++) {
      const start = i * pageSize, end = Math.min(cd.f.codeLimit, start + pageSize, file.length)
      const h = hashPage(cd.f.hashType, file.subarray(start, end)).subarray(0, cd.f.hashSize)
      if (!h.equals(cd.codeHashes[i])) problems.push(`${where}: page ${i} (file offset ${start}) hash mismatch`)
    }
    cd.specialHashes.forEach((stored, k) => {
      const slot = k + 1
      const blob = sig.blobs.find(b => b.type === slot)
      if (blob) {
        if (!hashPage(cd.f.hashType, blob.bytes).subarray(0, cd.f.hashSize).equals(stored)) problems.push(`${where}: special slot -${slot} hash mismatch`)
      } else if (slot !== 1 && slot !== 3 && stored.some(x => x !== 0)) {
        // Slots 1 (Info.plist) and 3 (resources) hash files outside the binary: not checkable here.
        problems.push(`${where}: special slot -${slot} has a hash but the signature has no such blob`)
      }
    })
    if (cd.f.version >= 0x20400 && text) {
      if (cd.f.execSegBase !== text.f.fileoff || cd.f.execSegLimit !== text.f.filesize) {
        problems.push(`${where}: exec segment ${cd.f.execSegBase}+${cd.f.execSegLimit} != __TEXT ${text.f.fileoff}+${text.f.filesize}`)
      }
      const main = m.header.filetype === MH_EXECUTE ? BigInt(CS_EXECSEG_MAIN_BINARY) : 0n
      if ((cd.f.execSegFlags & BigInt(CS_EXECSEG_MAIN_BINARY)) !== main) problems.push(`${where}: exec segment flags 0x${cd.f.execSegFlags.toString(16)} disagree with the file type`)
    }
  }
  return problems
}

function linkedit(m: MachoFile): CommandOf<'segment'> {
  const le = findSegment(m, '__LINKEDIT')
  if (!le) throw new MachoError('edit', 'MACHO_NO_SEGMENT', 'no __LINKEDIT segment')
  return le
}

/** Set __LINKEDIT's file size (and its memory size the way the linker did: equal, or page-rounded). */
export function setLinkeditSize(m: MachoFile, filesize: bigint): void {
  const le = linkedit(m)
  const pageRounded = le.f.vmsize !== le.f.filesize
  le.f.filesize = filesize
  le.f.vmsize = pageRounded ? alignUp(filesize, pageSizeOf(m)) : filesize
  const bytes = readFileRange(m, le.f.fileoff, filesize, true)
  m.chunks = m.chunks.filter(c => c.segment !== '__LINKEDIT' && c.offset < le.f.fileoff)
  if (filesize > 0n) m.chunks.push({offset: le.f.fileoff, bytes, segment: '__LINKEDIT'})
}

function pageSizeOf(m: MachoFile): bigint { return pageSizeFor(m.header.cputype) }

export interface StripResult {identifier?: string; pageSizeLog2?: number; warnings: string[]}

/** Remove LC_CODE_SIGNATURE and the signature bytes (in place); report what re-signing should keep. */
export function stripSignature(m: MachoFile): StripResult {
  const lc = signatureCommand(m)
  if (!lc) return {warnings: []}
  const sig = readSignature(m)!
  const warnings = sig.hasCms ? ['the code signature carries a CMS signature (a real identity): stripped, the image is signed ad hoc'] : []
  const cd = sig.directories.find(d => d.slot === CSSLOT_CODEDIRECTORY) ?? sig.directories[0]
  const le = linkedit(m)
  if (BigInt(lc.f.dataoff) < le.f.fileoff) throw new MachoError('edit', 'MACHO_BAD_LAYOUT', 'code signature lies before __LINKEDIT', {offset: lc.f.dataoff})
  removeCommand(m, lc)
  // The linker aligned the signature to 16 bytes; the padding before it stays part of __LINKEDIT.
  setLinkeditSize(m, BigInt(lc.f.dataoff) - le.f.fileoff)
  return {identifier: cd?.identifier, pageSizeLog2: cd?.f.pageSize, warnings}
}

export interface SignOptions {identifier: string; pageSizeLog2?: number}

/** Append an ad-hoc signature in the linker's shape (in place); the model must be unsigned. */
export function signAdhoc(m: MachoFile, opts: SignOptions): void {
  if (signatureCommand(m)) throw new MachoError('edit', 'MACHO_BAD_SIGNATURE', 'already signed: strip first')
  const le = linkedit(m)
  const need = loadCommandsEnd(m) + LinkeditDataCommand.size
  const room = firstSectionOffset(m)
  if (need > room) throw noRoom(need, room)
  const sigOff = alignUp(le.f.fileoff + le.f.filesize, 16n)
  const log2 = opts.pageSizeLog2 ?? (m.header.cputype === CPU_TYPE_ARM64 ? 14 : 12)
  const pageSize = 2 ** log2
  const ident = Buffer.from(opts.identifier, 'utf8')
  const blobHeaders = 24 // SuperBlob (12) + one BlobIndex (8), aligned to 8 as ld64.lld does
  const allHeaders = Number(alignUp(BigInt(blobHeaders + CodeDirectory.size + ident.length + 1), 16n))
  const nSlots = Math.ceil(Number(sigOff) / pageSize)
  const size = allHeaders + nSlots * 32
  insertCommand(m, {kind: 'linkedit_data', f: {cmd: LC.LC_CODE_SIGNATURE, cmdsize: LinkeditDataCommand.size, dataoff: Number(sigOff), datasize: size}})
  setLinkeditSize(m, sigOff + BigInt(size) - le.f.fileoff)
  const text = findSegment(m, '__TEXT')
  const sig = Buffer.alloc(size)
  encodeStruct(SuperBlobHeader, {magic: CSMAGIC_EMBEDDED_SIGNATURE, length: size, count: 1}, sig, 0)
  encodeStruct(BlobIndex, {type: CSSLOT_CODEDIRECTORY, offset: blobHeaders}, sig, SuperBlobHeader.size)
  const hashOffset = allHeaders - blobHeaders
  encodeStruct(CodeDirectory, {
    magic: CSMAGIC_CODEDIRECTORY, length: size - blobHeaders, version: CS_SUPPORTSEXECSEG, flags: CS_ADHOC | CS_LINKER_SIGNED,
    hashOffset, identOffset: CodeDirectory.size, nSpecialSlots: 0, nCodeSlots: nSlots, codeLimit: Number(sigOff),
    hashSize: 32, hashType: CS_HASHTYPE_SHA256, platform: 0, pageSize: log2, spare2: 0, scatterOffset: 0, teamOffset: 0,
    spare3: 0, codeLimit64: 0n, execSegBase: text?.f.fileoff ?? 0n, execSegLimit: text?.f.filesize ?? 0n,
    execSegFlags: m.header.filetype === MH_EXECUTE ? BigInt(CS_EXECSEG_MAIN_BINARY) : 0n,
  }, sig, blobHeaders)
  ident.copy(sig, blobHeaders + CodeDirectory.size)
  // The hashes cover the file up to the signature: serialise once with a zero signature to hash it.
  const file = writeMacho(m)
  for (let i = 0; i < nSlots; i++) {
    const start = i * pageSize
    createHash('sha256').update(file.subarray(start, Math.min(start + pageSize, Number(sigOff)))).digest().copy(sig, allHeaders + 32 * i)
  }
  const chunk = m.chunks.find(c => c.segment === '__LINKEDIT')!
  sig.copy(chunk.bytes, Number(sigOff - chunk.offset))
}

export function noRoom(need: number, room: number): MachoError {
  return new MachoError('edit', 'MACHO_NO_ROOM', `the load commands need ${need} bytes but the first section starts at ${room}`,
    {offset: room, value: need, hint: 'relink the runtime with -Wl,-headerpad,0x1000 to leave room for the image load commands'})
}

