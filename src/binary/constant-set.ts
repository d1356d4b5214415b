/** A set of named constants declared once; `nameOf` gives the symbolic name for display. */
export interface ConstantSet {
  readonly byValue: ReadonlyMap<bigint, string>
  nameOf(value: number | bigint): string | undefined
}

export function defineConstants(values: Readonly<Record<string, number | bigint>>): ConstantSet {
  const byValue = new Map<bigint, string>()
  for (const [name, v] of Object.entries(values)) if (!byValue.has(BigInt(v))) byValue.set(BigInt(v), name)
  return {byValue, nameOf: (v) => byValue.get(BigInt(v))}
}
