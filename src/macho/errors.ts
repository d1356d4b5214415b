import {type ErrorDetails, type ErrorPhase, ImgdumpError} from '../errors.js'

/**
 * Errors about Mach-O files. Codes: MACHO_TRUNCATED, MACHO_BAD_MAGIC, MACHO_BAD_COMMAND,
 * MACHO_BAD_LAYOUT, MACHO_BAD_FIXUPS, MACHO_BAD_OPCODES, MACHO_BAD_SIGNATURE, MACHO_NO_ROOM,
 * MACHO_NO_SEGMENT, MACHO_TLS_SHARED_PAGE, MACHO_NO_ARCH, MACHO_UNSUPPORTED, MACHO_BAD_SYMBOL, MACHO_BAD_EXPORTS.
 */
export class MachoError extends ImgdumpError {
  constructor(phase: ErrorPhase, code: string, message: string, details: ErrorDetails = {}) {
    super(phase, code, message, details)
    this.name = 'MachoError'
  }
}

export function truncated(what: string, offset: number | bigint, need: number | bigint, have: number | bigint): MachoError {
  return new MachoError('parse', 'MACHO_TRUNCATED', `${what} at offset ${offset} needs ${need} bytes, only ${have} available`, {offset, value: need})
}
