/**
 * The one dispatch point of `imgdump inspect`: look at the file's magic and hand it to its
 * format — an imgdump image (ELF with a manifest note), a plain ELF file, a Mach-O or fat
 * file. Returns the JSON-able description and its text rendering.
 */
import {readFileSync} from 'node:fs'
import {ImgdumpError, ioError} from '../errors.js'
import {describeElf, type ElfDescription} from '../elf/describe.js'
import {parseElf} from '../elf/reader.js'
import {describeImage, isImageFile, type ImageDescription} from '../image/describe-image.js'
import {describeMachoImage, renderMachoImageText, type MachoImageDescription} from '../image/macho-describe.js'
import {fileFormat} from './file-format.js'
import {renderElfText} from './render-text.js'

export type FileDescription = ElfDescription | ImageDescription | MachoImageDescription

export interface DescribeOptions {
  /** Mach-O fat files: the slice to describe (default: all). */
  arch?: string
}


function readWhole(path: string): Buffer {
  try { return readFileSync(path) } catch (err) { throw ioError(err, path) }
}

export function describeFile(path: string, opts: DescribeOptions = {}): {object: FileDescription; text: string} {
  const format = fileFormat(path)
  switch (format) {
  case 'elf': {
    // Images first: their heap reservation PT_LOAD lies past the end of the file by design.
    if (isImageFile(path)) return describeImage(path)
    const bytes = readWhole(path)
    const d = describeElf(parseElf(bytes), bytes.length)
    return {object: d, text: renderElfText(path, d)}
  }
  case 'macho':
  case 'fat': {
    const d = describeMachoImage(readWhole(path), opts)
    return {object: d, text: renderMachoImageText(path, d)}
  }
  default:
    throw new ImgdumpError('parse', 'UNKNOWN_FORMAT', `${path}: not a file imgdump knows (no ELF or Mach-O magic)`, {offset: 0})
  }
}
