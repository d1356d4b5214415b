/** Read an image's manifest with the current decoders (ELF note or Mach-O section). */
import fs from 'node:fs'
import {fdSource} from '../../src/elf/byte-source.js'
import {ElfScan} from '../../src/elf/scan.js'
import {findMachoManifest} from '../../src/image/macho-plan.js'
import type {Manifest} from '../../src/image/manifest.js'
import {findManifest} from '../../src/image/original-executable.js'

export function readGoldenManifest(file: string, format: 'elf' | 'macho'): Manifest {
  if (format === 'macho') {
    const found = findMachoManifest(fs.readFileSync(file))
    if (!found) throw new Error(`${file}: no Mach-O manifest`)
    return found.manifest
  }
  const fd = fs.openSync(file, 'r')
  try {
    const found = findManifest(new ElfScan(fdSource(fd)))
    if (!found) throw new Error(`${file}: no ELF manifest`)
    return found.manifest
  } finally { fs.closeSync(fd) }
}
