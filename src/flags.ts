import {Flags} from '@oclif/core'
import {ImgdumpError} from './errors.js'

/** Parse a non-negative integer in decimal or 0x-hex into a bigint (addresses do not fit `number`). */
export function parseBigInt(input: string): bigint {
  const s = input.trim().replace(/_/g, '')
  if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(s)) {
    throw new ImgdumpError('usage', 'BAD_NUMBER', `not a number: ${JSON.stringify(input)} (use decimal or 0x-hex)`)
  }
  return BigInt(s)
}

/** oclif's Flags.integer is a decimal `number`; addresses need this bigint flag. */
export const bigintFlag = Flags.custom<bigint>({
  parse: async (input) => parseBigInt(input),
})
