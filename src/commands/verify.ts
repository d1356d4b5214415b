import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {EXIT_CODES} from '../exit-codes.js'
import {verifyFile, type FileVerifyReport} from '../inspect/verify-file.js'

export default class Verify extends BaseCommand {
  static override description = `Check an image: structure and every checksum

Validates the program headers against the manifest, the manifest's own CRC32C, the CRC32C of
every saved byte range, the heap header's generation, and that the undo log rebuilds the
original runtime executable (SHA-256). Mach-O and fat files get the structural checks
(alignment, overlaps, __LINKEDIT last and every offset inside it, chained-fixup segment
count, code-signature page hashes). Lists every problem found; exits 7 if there is any.`

  static override examples = [
    '<%= config.bin %> verify ./lisp.img',
    '<%= config.bin %> verify ./lisp.img --json',
    '<%= config.bin %> verify ./universal-binary --arch arm64',
  ]

  static override flags = {
    arch: Flags.string({description: 'Mach-O fat files: the slice to check (default: every slice)'}),
  }

  static override args = {
    image: Args.string({description: 'image file to check', required: true}),
  }

  async run(): Promise<FileVerifyReport> {
    const {args, flags} = await this.parse(Verify)
    const report = verifyFile(args.image, {arch: flags.arch})
    if (!report.ok) process.exitCode = EXIT_CODES.verify
    if (this.jsonEnabled()) return report
    if (report.ok) {
      this.log(report.format === 'elf'
        ? `${args.image}: ok (generation ${report.generation}, ${report.payloads} payloads, ${report.bytesChecked} bytes checked)`
        : `${args.image}: ok (${report.format === 'fat' ? 'fat ' : ''}Mach-O, structure and signature)`)
    } else {
      for (const p of report.problems) this.log(`${p.code}: ${p.message}`)
      process.stderr.write(`imgdump: error: ${args.image} failed verification (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'})\n`)
    }
    return report
  }
}
