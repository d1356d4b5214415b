import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {EXIT_CODES} from '../exit-codes.js'
import {verifyImage, type VerifyReport} from '../image/verify-image.js'

export default class Verify extends BaseCommand {
  static override description = `Check an image: structure and every checksum

Validates the program headers against the manifest, the manifest's own CRC32C, the CRC32C of
every saved byte range, the heap header's generation, and that the undo log rebuilds the
original runtime executable (SHA-256). Lists every problem found; exits 7 if there is any.`

  static override examples = [
    '<%= config.bin %> verify ./lisp.img',
    '<%= config.bin %> verify ./lisp.img --json',
  ]

  static override args = {
    image: Args.string({description: 'image file to check', required: true}),
  }

  async run(): Promise<VerifyReport> {
    const {args} = await this.parse(Verify)
    const report = verifyImage(args.image)
    if (!report.ok) process.exitCode = EXIT_CODES.verify
    if (this.jsonEnabled()) return report
    if (report.ok) {
      this.log(`${args.image}: ok (generation ${report.generation}, ${report.payloads} payloads, ${report.bytesChecked} bytes checked)`)
    } else {
      for (const p of report.problems) this.log(`${p.code}: ${p.message}`)
      process.stderr.write(`imgdump: error: ${args.image} failed verification (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'})\n`)
    }
    return report
  }
}
