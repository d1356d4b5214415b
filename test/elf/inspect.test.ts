import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describeElf, parseElf} from './elf-api.js'
import {buildCli, corpusFile, runCliMany, type CliResult} from './corpus.js'

/** `imgdump inspect` through the real CLI: human output and the documented --json shape. */
const FILES = ['static', 'static-pie', 'dynamic', 'pie', 'pie-nosections', 'libprobe.so']

describe('imgdump inspect (ELF)', function () {
  this.timeout(300_000)
  let human: CliResult[]
  let json: CliResult[]
  before(async () => {
    buildCli()
    human = await runCliMany(FILES.map((f) => ['inspect', corpusFile(f)]))
    json = await runCliMany(FILES.map((f) => ['inspect', corpusFile(f), '--json']))
  })

  FILES.forEach((f, i) => {
    it(`${f}: --json is the documented description`, () => {
      assert.equal(json[i].status, 0, json[i].stderr)
      const got = JSON.parse(json[i].stdout)
      const bytes = readFileSync(corpusFile(f))
      assert.deepEqual(got, JSON.parse(JSON.stringify(describeElf(parseElf(bytes), bytes.length))))
      // The stable keys of docs/inspect.md, in order.
      assert.deepEqual(Object.keys(got), ['format', 'class', 'endian', 'machine', 'elfType', 'kind', 'entry', 'interpreter', 'needed', 'soname',
        'runpath', 'buildId', 'abiTag', 'gnuProperties', 'fileSize', 'programHeaders', 'sections', 'symbols'])
      assert.deepEqual(Object.keys(got.programHeaders[0]), ['index', 'type', 'flags', 'offset', 'vaddr', 'paddr', 'filesz', 'memsz', 'align'])
      assert.equal(got.fileSize, bytes.length)
    })

    it(`${f}: human output names kind, entry, build-id and every segment`, () => {
      assert.equal(human[i].status, 0, human[i].stderr)
      const out = human[i].stdout
      const d = JSON.parse(json[i].stdout)
      const kindText = {exec: 'executable (ET_EXEC)', pie: 'PIE executable', 'static-pie': 'static-pie executable', 'shared-object': 'shared object'}[d.kind as string]
      assert.match(out.split('\n')[0], new RegExp(`: ELF64 x86-64 ${kindText!.replace(/[()]/g, '\\$&')}, ${d.fileSize} bytes$`))
      assert.match(out, new RegExp(`^  entry +${d.entry}$`, 'm'))
      assert.match(out, new RegExp(`^  build-id +${d.buildId}$`, 'm'))
      if (d.interpreter) assert.match(out, new RegExp(`^  interpreter +${d.interpreter}$`, 'm'))
      if (d.needed.length) assert.match(out, new RegExp(`^  needed +${d.needed.join(', ')}$`, 'm'))
      assert.match(out, new RegExp(`^Program headers \\(${d.programHeaders.length}\\):$`, 'm'))
      for (const p of d.programHeaders) assert.match(out, new RegExp(`^ +${p.index}  ${p.type.replace('PT_', '')} +${p.flags} +${p.offset} +${p.vaddr} +${p.filesz} +${p.memsz} +${p.align}$`, 'm'))
      if (d.sections.length === 0) assert.match(out, /^Sections: none \(section headers stripped\)$/m)
      else assert.match(out, new RegExp(`^Sections \\(${d.sections.length}\\):$`, 'm'))
    })
  })
})
