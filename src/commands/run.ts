import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {runSession, type RunResult} from '../session/orchestrator.js'

export default class Run extends BaseCommand {
  static override description = `Start a runtime under imgdump: it can then be saved from another terminal

The runtime (linked with libimgdump) gets a control socket (IMGDUMP_CONTROL_FD) to this
process, which plans and finalizes its saves without any start-up cost per save. The
session is registered so that \`imgdump sessions\` lists it and \`imgdump save <name>\`
reaches it. The runtime owns the terminal; signals are passed on; imgdump exits with the
runtime's exit status (128 + N when signal N killed it).`

  static override examples = [
    '<%= config.bin %> run -- ./my-lisp --load init.lisp',
    '<%= config.bin %> run --name work -- ./my-lisp',
    '# in another terminal:\n<%= config.bin %> save work -o work.img',
  ]

  static override enableJsonFlag = false
  static override strict = false
  static override flags = {
    name: Flags.string({char: 'n', description: 'session name (default: <runtime>-<n>)'}),
  }

  static override args = {
    runtime: Args.string({description: 'the runtime executable (after `--`), followed by its arguments', required: true}),
  }

  async run(): Promise<RunResult> {
    const {argv, flags} = await this.parse(Run)
    // oclif's non-strict parsing may reorder what follows `--` (`-e A -e B` came out as
    // `-e -e A B`): the runtime's arguments are taken verbatim from the raw argv instead.
    const dash = this.argv.indexOf('--')
    const [runtime, ...args] = dash >= 0 ? this.argv.slice(dash + 1) : argv as string[]
    const result = await runSession({runtime, args, name: flags.name})
    process.exitCode = result.status
    return result
  }
}
