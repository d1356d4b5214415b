/** Round `v` up to a multiple of `a` (a > 0). */
export const alignUp = (v: bigint, a: bigint): bigint => (v + a - 1n) / a * a
export const alignUpN = (v: number, a: number): number => Math.ceil(v / a) * a
