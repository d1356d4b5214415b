import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ImgdumpError} from '../errors.js'
import {runDemo, type DemoResult} from '../demo/lisp-demo.js'
import {PACKAGE_ROOT, writableDirOr} from '../demo/package-root.js'
import {renderDemo} from '../demo/render.js'

export default class Demo extends BaseCommand {
  static override description = 'The main job on the bundled Lisp: build a >100 MB world, save it as an executable, restore it, compare'
  static override examples = [
    '<%= config.bin %> demo',
    '<%= config.bin %> demo --dir /tmp/demo --records 20000',
    '<%= config.bin %> demo --json',
  ]

  static override flags = {
    dir: Flags.string({description: 'where to write the images (default: images/demo/ of the checkout, or a temp dir when the package is not writable)'}),
    records: Flags.integer({description: 'records in the world (90000 ≈ 120 MB of heap)', default: 90000, min: 1}),
    'restore-runs': Flags.integer({description: 'restores to time (the median is shown)', default: 5, min: 1}),
  }

  async run(): Promise<DemoResult> {
    const {flags} = await this.parse(Demo)
    const tty = process.stderr.isTTY && !this.jsonEnabled()
    const result = runDemo({
      dir: flags.dir ?? writableDirOr(PACKAGE_ROOT, 'images/demo', 'imgdump-demo'),
      records: flags.records,
      restoreRuns: flags['restore-runs'],
      progress: (m) => { if (tty) process.stderr.write(`… ${m}\n`) },
    })
    if (!this.jsonEnabled()) this.log(renderDemo(result))
    if (!result.queries.every((q) => q.same) || !result.generation2.changePresent || result.generation2.generation !== 2) {
      throw new ImgdumpError('verify', 'DEMO_MISMATCH', 'the restored Lisp did not answer like the original (see above)')
    }
    return result
  }
}
