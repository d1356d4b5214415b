/** Symbol tables (.symtab, .dynsym) through the section headers. */
import {SHT, SymbolDef} from './definitions.js'
import {parseError} from './errors.js'
import {decodeStruct} from '../binary/field-table.js'
import {readBytes} from './layout.js'
import type {ElfFile, Section} from './model.js'
import {cString} from './reader.js'

export interface ElfSymbol {
  readonly index: number
  readonly name: string
  readonly value: bigint
  readonly size: bigint
  /** STT_*: 0 notype, 1 object, 2 func, 3 section, 4 file, 6 tls, 10 ifunc. */
  readonly type: number
  /** STB_*: 0 local, 1 global, 2 weak, 10 unique. */
  readonly bind: number
  readonly shndx: number
}

export function symbolTables(elf: ElfFile): Section[] {
  return elf.sections.filter((s) => s.header.sh_type === SHT.SHT_SYMTAB || s.header.sh_type === SHT.SHT_DYNSYM)
}

export function symbolCount(s: Section): number {
  return Number(s.header.sh_size / BigInt(SymbolDef.size))
}

/** All symbols of a symbol table section, names resolved through its sh_link string table. */
export function readSymbols(elf: ElfFile, table: Section): ElfSymbol[] {
  const strSec = elf.sections[table.header.sh_link]
  if (!strSec || strSec.header.sh_type !== SHT.SHT_STRTAB) {
    throw parseError('ELF_BAD_INDEX', `${table.name}: sh_link ${table.header.sh_link} is not a string table`, table.header.sh_offset, table.header.sh_link)
  }
  const strings = readBytes(elf, strSec.header.sh_offset, strSec.header.sh_size)
  const bytes = readBytes(elf, table.header.sh_offset, table.header.sh_size)
  const out: ElfSymbol[] = []
  for (let i = 0; i < symbolCount(table); i++) {
    const s = decodeStruct(SymbolDef, bytes, i * SymbolDef.size)
    if (BigInt(s.st_name) >= strSec.header.sh_size && s.st_name !== 0) throw parseError('ELF_BAD_STRING', `${table.name}[${i}]: name offset ${s.st_name} outside ${strSec.name}`, table.header.sh_offset, s.st_name)
    out.push({index: i, name: s.st_name === 0 ? '' : cString(strings, BigInt(s.st_name), BigInt(strings.length), `${table.name}[${i}]`),
      value: s.st_value, size: s.st_size, type: s.st_info & 0xf, bind: s.st_info >> 4, shndx: s.st_shndx})
  }
  return out
}
