/**
 * The dispatch point of `imgdump verify`: an ELF image gets the full check (structure,
 * manifest, every checksum, undo log); a Mach-O or fat file the structural and signature
 * checks of src/macho (layout invariants, linkedit offsets, chained-fixup counts, page hashes).
 */
import {readFileSync} from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {verifyImage, type VerifyReport} from '../image/verify-image.js'
import {verifyMachoImage} from '../image/macho-verify.js'
import {fileFormat} from './file-format.js'

export interface FileVerifyReport extends VerifyReport {
  format: 'elf' | 'macho' | 'fat'
}

export function verifyFile(path: string, opts: {arch?: string} = {}): FileVerifyReport {
  const format = fileFormat(path)
  if (format === 'elf') return {format, ...verifyImage(path)}
  if (format === 'macho' || format === 'fat') {
    let buf: Buffer
    try { buf = readFileSync(path) } catch (err) { throw ioError(err, path) }
    const r = verifyMachoImage(buf, {arch: opts.arch})
    return {format, path, ok: r.ok, generation: null, payloads: 0, bytesChecked: String(buf.length),
      problems: r.problems.map((message) => ({code: 'MACHO_INVALID', message}))}
  }
  throw new ImgdumpError('parse', 'UNKNOWN_FORMAT', `${path}: not a file imgdump knows (no ELF or Mach-O magic)`, {offset: 0})
}
