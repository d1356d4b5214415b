/** An address, offset or size as lower-case `0x…` hex, the one spelling every message and view uses. */
export const hex = (v: bigint | number): string => `0x${v.toString(16)}`
