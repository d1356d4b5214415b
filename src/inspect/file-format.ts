/** Which executable format a file is, from its first bytes (one place for every magic). */
import {closeSync, openSync, readSync} from 'node:fs'
import {ioError} from '../errors.js'

export type FileFormat = 'elf' | 'macho' | 'fat' | 'unknown'

function formatOfMagic(head: Uint8Array): FileFormat {
  if (head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46) return 'elf'
  if (head.length >= 1 && head[0] === 0x7f) return 'elf' // starts like ELF: its reader names what is wrong
  if (head.length < 4) return 'unknown'
  const le = head[0] | (head[1] << 8) | (head[2] << 16) | (head[3] << 24)
  const be = (head[0] << 24) | (head[1] << 16) | (head[2] << 8) | head[3]
  if (le >>> 0 === 0xfeedfacf) return 'macho' // MH_MAGIC_64, little-endian (x86_64, arm64)
  if (be >>> 0 === 0xcafebabe || be >>> 0 === 0xcafebabf) return 'fat' // FAT_MAGIC / FAT_MAGIC_64, big-endian
  return 'unknown'
}

/** The format of the file at `path`, from its first four bytes. */
export function fileFormat(path: string): FileFormat {
  let fd: number
  try { fd = openSync(path, 'r') } catch (err) { throw ioError(err, path) }
  try {
    const head = Buffer.alloc(4)
    const n = readSync(fd, head, 0, 4, 0)
    return formatOfMagic(head.subarray(0, n))
  } catch (err) {
    throw ioError(err, path)
  } finally {
    closeSync(fd)
  }
}
