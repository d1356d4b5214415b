/**
 * The one dispatch point of `imgdump inspect`: read the file, switch on its magic. Each
 * format adds its branch here (ELF now; Mach-O and imgdump images later).
 */
import {readFileSync} from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {describeElf, type ElfDescription} from '../elf/describe.js'
import {parseElf} from '../elf/reader.js'

export type FileDescription = ElfDescription

export function describeFile(path: string): FileDescription {
  let bytes: Uint8Array
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw ioError(err, path)
  }
  if (bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    return describeElf(parseElf(bytes), bytes.length)
  }
  if (bytes.length >= 1 && bytes[0] === 0x7f) {
    // Starts like ELF: let the ELF reader name what is wrong (truncated, bad magic).
    return describeElf(parseElf(bytes), bytes.length)
  }
  throw new ImgdumpError('parse', 'UNKNOWN_FORMAT', `${path}: not a file imgdump knows (no ELF magic)`, {offset: 0})
}
