/** Half-open bigint ranges [start, end) and the set operations the planner needs. */
export interface Range {start: bigint; end: bigint}

/** Sorted, merged, without empty ranges. */
export function normalize(ranges: readonly Range[]): Range[] {
  const sorted = ranges.filter((r) => r.end > r.start).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0))
  const out: Range[] = []
  for (const r of sorted) {
    const last = out[out.length - 1]
    if (last && r.start <= last.end) { if (r.end > last.end) last.end = r.end } else out.push({...r})
  }
  return out
}

export function clip(ranges: readonly Range[], to: Range): Range[] {
  return normalize(ranges.map((r) => ({start: r.start < to.start ? to.start : r.start, end: r.end > to.end ? to.end : r.end})))
}

/** `whole` minus every range of `holes`. */
export function subtract(whole: Range, holes: readonly Range[]): Range[] {
  const out: Range[] = []
  let at = whole.start
  for (const h of clip(holes, whole)) {
    if (h.start > at) out.push({start: at, end: h.start})
    at = h.end
  }
  if (at < whole.end) out.push({start: at, end: whole.end})
  return out
}

export function contains(ranges: readonly Range[], addr: bigint, len = 1n): boolean {
  return ranges.some((r) => addr < r.end && addr + len > r.start)
}

export function overlaps(a: Range, b: Range): boolean { return a.start < b.end && b.start < a.end }

const alignDown = (v: bigint, a: bigint): bigint => v / a * a
/** The smallest offset ≥ `from` with offset ≡ `addr` (mod `align`). */
export function congruentOffset(from: bigint, addr: bigint, align: bigint): bigint {
  const want = addr % align
  const base = alignDown(from, align) + want
  return base >= from ? base : base + align
}
