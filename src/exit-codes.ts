import type {ErrorPhase} from './errors.js'

/**
 * The one table from error phase to process exit code (documented in docs/exit-codes.md).
 * Scripts may rely on these numbers; never renumber, only append.
 */
export const EXIT_CODES: Readonly<Record<ErrorPhase | 'ok', number>> = {
  ok: 0,
  internal: 1,
  usage: 2,
  io: 3,
  parse: 4,
  edit: 5,
  write: 6,
  verify: 7,
  compat: 8,
  session: 9,
  save: 10,
}

export function exitCodeFor(phase: ErrorPhase): number {
  return EXIT_CODES[phase]
}
