import {Command, Errors} from '@oclif/core'
import {asTypedError, ImgdumpError} from './errors.js'
import {EXIT_CODES, exitCodeFor} from './exit-codes.js'

/**
 * Base of every imgdump command: `--json` on, and one error path. A typed ImgdumpError
 * becomes one clear line on stderr (or a JSON object on stdout under --json) and the
 * exit code of its phase. oclif's own `this.error(…, {exit})` would exit 1 under --json;
 * overriding `catch` keeps the documented code in both modes. No stack traces for users.
 */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    const typed = toTypedError(err)
    const code = exitCodeFor(typed.phase)
    if (this.jsonEnabled()) {
      process.stdout.write(JSON.stringify({error: typed.toJSON()}, null, 2) + '\n')
    } else {
      process.stderr.write(`imgdump: error: ${typed.message}\n`)
      if (typed.hint) process.stderr.write(`  hint: ${typed.hint}\n`)
      if (typed.phase === 'internal' && process.env.IMGDUMP_DEBUG) process.stderr.write(`${err.stack}\n`)
    }
    process.exitCode = code
    // oclif's runner turns an ExitError into process.exit with this code, without printing.
    throw new Errors.ExitError(code)
  }
}

/** Map anything thrown to an ImgdumpError: typed errors as they are, oclif parse errors as usage. */
function toTypedError(err: unknown): ImgdumpError {
  if (err instanceof ImgdumpError) return err
  const e = err as Error & {oclif?: {exit?: number}; code?: string}
  if (e instanceof Errors.CLIError || e?.constructor?.name?.endsWith('Error') && e?.oclif) {
    return new ImgdumpError('usage', 'USAGE', firstLine(e.message))
  }
  const typed = asTypedError(err)
  if (typed.phase !== 'internal') return typed
  return new ImgdumpError('internal', 'INTERNAL', typed.message, {
    hint: 'this is a bug in imgdump; run with IMGDUMP_DEBUG=1 for the stack trace and report it',
  })
}

function firstLine(s: string): string {
  return s.split('\n')[0].replace(/^Error: /, '')
}

export {EXIT_CODES}
