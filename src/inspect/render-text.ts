/** Human rendering of `imgdump inspect` (kept apart from the data: display is not parsing). */
import type {ElfDescription} from '../elf/describe.js'

const KIND_TEXT: Readonly<Record<string, string>> = {
  exec: 'executable (ET_EXEC)', pie: 'PIE executable', 'static-pie': 'static-pie executable',
  'shared-object': 'shared object', relocatable: 'relocatable object', core: 'core file', other: 'ELF file',
}

export function renderElfText(path: string, d: ElfDescription): string {
  const lines: string[] = []
  lines.push(`${path}: ${d.class} ${d.machine} ${KIND_TEXT[d.kind]}, ${d.fileSize} bytes`)
  const kv = (k: string, v: string | null): void => { if (v !== null && v !== '') lines.push(`  ${k.padEnd(12)} ${v}`) }
  kv('entry', d.entry)
  kv('interpreter', d.interpreter)
  kv('needed', d.needed.join(', '))
  kv('soname', d.soname)
  kv('runpath', d.runpath)
  kv('build-id', d.buildId)
  kv('abi-tag', d.abiTag)
  kv('symbols', `symtab ${d.symbols.symtab ?? '-'}, dynsym ${d.symbols.dynsym ?? '-'}`)
  lines.push('', `Program headers (${d.programHeaders.length}):`)
  lines.push(table(['#', 'type', 'flags', 'offset', 'vaddr', 'filesz', 'memsz', 'align'],
    d.programHeaders.map((p) => [String(p.index), p.type.replace(/^PT_/, ''), p.flags, p.offset, p.vaddr, p.filesz, p.memsz, p.align])))
  lines.push('', d.sections.length === 0 ? 'Sections: none (section headers stripped)' : `Sections (${d.sections.length}):`)
  if (d.sections.length > 0) {
    lines.push(table(['#', 'name', 'type', 'flags', 'addr', 'offset', 'size'],
      d.sections.map((s) => [String(s.index), s.name, s.type.replace(/^SHT_/, ''), s.flags, s.addr, s.offset, s.size])))
  }
  return lines.join('\n') + '\n'
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const fmt = (r: string[]): string => '  ' + r.map((c, i) => (i === 0 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd()
  return [fmt(head), ...rows.map(fmt)].join('\n')
}
