/** Round `v` up to a multiple of `a`; an alignment of 0 or 1 means none (ELF's p_align rule). */
export const alignUp = (v: bigint, a: bigint): bigint => (a <= 1n ? v : (v + a - 1n) / a * a)
export const alignUpN = (v: number, a: number): number => (a <= 1 ? v : Math.ceil(v / a) * a)
