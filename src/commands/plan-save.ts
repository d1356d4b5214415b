import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {exitCodeFor} from '../exit-codes.js'
import {serveOneSave} from '../session/standalone.js'

export interface PlanSaveResult {
  ok: boolean
  path?: string
  bytes?: number
  pages?: number
  ms?: number
  error?: Record<string, unknown>
}

/**
 * The planner that libimgdump starts for a save outside `imgdump run` (docs/protocol.md).
 * Not for people: the runtime already reports the outcome, so nothing is printed unless
 * IMGDUMP_DEBUG is set; the exit status says whether the save was done.
 */
export default class PlanSave extends BaseCommand {
  static override hidden = true
  static override description = 'Plan and finalize one save for a runtime connected on an inherited socket (started by libimgdump)'
  static override examples = ['<%= config.bin %> plan-save --fd 3']
  static override flags = {
    fd: Flags.integer({description: 'inherited Unix socket connected to the runtime', required: true, min: 0}),
  }

  async run(): Promise<PlanSaveResult> {
    const {flags} = await this.parse(PlanSave)
    const outcome = await serveOneSave(flags.fd)
    if (outcome.ok) {
      const r = outcome.result
      return {ok: true, path: r.path, bytes: Number(r.bytes), pages: r.pages, ms: r.ms}
    }
    if (process.env.IMGDUMP_DEBUG) process.stderr.write(`imgdump plan-save: ${outcome.error.message}\n`)
    process.exitCode = exitCodeFor(outcome.error.phase)
    return {ok: false, error: outcome.error.toJSON()}
  }
}
